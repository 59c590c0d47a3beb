package api

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// A version 4 UUID: the version nibble is 4 and the variant bits are 10
// (the first hex digit of the fourth group is 8, 9, a or b).
var uuidV4RE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewUID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		u := NewUID()
		if !uuidV4RE.MatchString(u) {
			t.Fatalf("NewUID() = %q, not a version 4 UUID", u)
		}
		if seen[u] {
			t.Fatalf("NewUID() returned %q twice", u)
		}
		seen[u] = true
	}
}

func TestGenerateName(t *testing.T) {
	cases := []struct {
		base       string
		wantPrefix string
	}{
		{"", ""},
		{"web-", "web-"},
		{strings.Repeat("a", GeneratedNameMaxLength-GenerateNameSuffixLength), strings.Repeat("a", GeneratedNameMaxLength-GenerateNameSuffixLength)},
		{strings.Repeat("b", 200), strings.Repeat("b", GeneratedNameMaxLength-GenerateNameSuffixLength)},
	}
	for _, tc := range cases {
		n := GenerateName(tc.base)
		if !strings.HasPrefix(n, tc.wantPrefix) || len(n) != len(tc.wantPrefix)+GenerateNameSuffixLength {
			t.Errorf("GenerateName(%d characters) = %q (%d characters), want %q and %d random characters",
				len(tc.base), n, len(n), tc.wantPrefix, GenerateNameSuffixLength)
		}
		if len(n) > GeneratedNameMaxLength {
			t.Errorf("GenerateName(%d characters) is %d characters long, the cap is %d", len(tc.base), len(n), GeneratedNameMaxLength)
		}
	}

	// The suffix uses only the alphabet, and (over many draws) all of it:
	// 36 symbols in 5000 draws each miss with probability (35/36)^5000.
	used := map[rune]bool{}
	for range 1000 {
		n := GenerateName("web-")
		for _, r := range strings.TrimPrefix(n, "web-") {
			if !strings.ContainsRune(nameAlphabet, r) {
				t.Fatalf("GenerateName suffix of %q has %q, outside %q", n, r, nameAlphabet)
			}
			used[r] = true
		}
		// Every generated name from a valid prefix is a valid name.
		var v validator
		nameDNSLabel(&v, "metadata.name", n)
		if v.errs != nil {
			t.Fatalf("GenerateName(web-) = %q: %v", n, v.errs)
		}
	}
	if len(used) != len(nameAlphabet) {
		t.Errorf("1000 suffixes used %d of the %d characters of the alphabet", len(used), len(nameAlphabet))
	}
}

func TestPrepareCreate(t *testing.T) {
	deleted := NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cm := &ConfigMap{ObjectMeta: ObjectMeta{
		Name: "c", Namespace: "default", Labels: map[string]string{"app": "web"},
		UID: "old", ResourceVersion: "42", Generation: 7, DeletionTimestamp: &deleted, DeletionGracePeriodSeconds: ptr[int64](30),
	}, Data: map[string]string{"k": "v"}}
	now := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.FixedZone("x", 3600))
	PrepareCreate(cm, now, "uid-1")

	m := cm.ObjectMeta
	if cm.Kind != "ConfigMap" || cm.APIVersion != "v1" {
		t.Errorf("type meta = %+v", cm.TypeMeta)
	}
	if m.UID != "uid-1" || m.ResourceVersion != "" || m.Generation != 0 || m.DeletionTimestamp != nil || m.DeletionGracePeriodSeconds != nil {
		t.Errorf("server-owned metadata = uid %q, resourceVersion %q, generation %d, deletionTimestamp %v, deletionGracePeriodSeconds %v",
			m.UID, m.ResourceVersion, m.Generation, m.DeletionTimestamp, m.DeletionGracePeriodSeconds)
	}
	if want := time.Date(2026, 3, 4, 4, 6, 7, 0, time.UTC); !m.CreationTimestamp.Equal(want) || m.CreationTimestamp.Location() != time.UTC {
		t.Errorf("creationTimestamp = %v, want %v (UTC, whole seconds)", m.CreationTimestamp.Time, want)
	}
	if m.Name != "c" || m.Namespace != "default" || m.Labels["app"] != "web" || cm.Data["k"] != "v" {
		t.Errorf("PrepareCreate changed what the client owns: %+v", cm)
	}
}
