package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// TestListAtMatchesPastLists records List after every op of a random
// sequence of creates, updates and deletes in two namespaces and a second
// kind, then checks that ListAt at every retained revision returns the same
// objects with the same resourceVersions and labels, with and without a
// namespace and a label selector.
func TestListAtMatchesPastLists(t *testing.T) {
	s := New(Config{HistorySize: 1000, WatchBuffer: 64})
	rng := rand.New(rand.NewPCG(1, 2))
	render := func(ns string, sel Selector, rev int64) string {
		var objs []string
		got, err := s.ListAt("Pod", ns, sel, rev)
		if err != nil {
			t.Fatalf("ListAt(%q, %d): %v", ns, rev, err)
		}
		for _, o := range got {
			m := o.GetObjectMeta()
			objs = append(objs, fmt.Sprintf("%s/%s@%s%v", m.Namespace, m.Name, m.ResourceVersion, m.Labels))
		}
		return strings.Join(objs, " ")
	}
	oddLabels, err := api.ParseSelector("odd=yes")
	if err != nil {
		t.Fatal(err)
	}
	odd := Selector{Labels: oddLabels}
	type past struct{ all, nsA, oddSel string }
	history := map[int64]past{}
	for step := range 300 {
		ns := []string{"a", "b"}[rng.IntN(2)]
		name := fmt.Sprint("p", rng.IntN(8))
		_, err := s.Get(Key{Kind: "Pod", Namespace: ns, Name: name})
		switch {
		case step%7 == 0:
			mustApply(t, s, create(configMap(ns, fmt.Sprint("cm", step))))
		case err != nil:
			mustApply(t, s, create(pod(ns, name, "", nil)))
		case rng.IntN(3) == 0:
			mustApply(t, s, Op{Type: OpDelete, Key: Key{Kind: "Pod", Namespace: ns, Name: name}})
		default:
			p := editPod(t, s, ns, name, func(p *api.Pod) {
				p.Labels = map[string]string{"step": fmt.Sprint(step)}
				if step%2 == 1 {
					p.Labels["odd"] = "yes"
				}
			})
			mustApply(t, s, update(p))
		}
		rev := s.Revision()
		history[rev] = past{render("", Selector{}, 0), render("a", Selector{}, 0), render("", odd, 0)}
	}
	for rev, want := range history {
		if got := render("", Selector{}, rev); got != want.all {
			t.Fatalf("ListAt(all, %d) =\n%s\nwant\n%s", rev, got, want.all)
		}
		if got := render("a", Selector{}, rev); got != want.nsA {
			t.Fatalf("ListAt(a, %d) =\n%s\nwant\n%s", rev, got, want.nsA)
		}
		if got := render("", odd, rev); got != want.oddSel {
			t.Fatalf("ListAt(odd=yes, %d) =\n%s\nwant\n%s", rev, got, want.oddSel)
		}
	}
}

func TestListAtLimits(t *testing.T) {
	s := New(Config{HistorySize: 2, WatchBuffer: 4})
	for i := range 5 {
		mustApply(t, s, create(pod("a", fmt.Sprint("p", i), "", nil)))
	}
	if _, err := s.ListAt("Pod", "", Selector{}, 2); !errors.Is(err, ErrTooOld) {
		t.Fatalf("ListAt below the history: %v, want ErrTooOld", err)
	}
	if _, err := s.ListAt("Pod", "", Selector{}, 6); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ListAt ahead of the store: %v, want ErrInvalid", err)
	}
	got, err := s.ListAt("Pod", "", Selector{}, 3)
	if err != nil || names(got) != "a/p0 a/p1 a/p2" {
		t.Fatalf("ListAt(3) = %q, %v", names(got), err)
	}
}
