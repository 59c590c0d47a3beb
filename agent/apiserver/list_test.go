package apiserver

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

type wireList struct {
	Metadata api.ListMeta `json:"metadata"`
	Items    []struct {
		Metadata api.ObjectMeta `json:"metadata"`
	} `json:"items"`
}

func (e *env) list(t *testing.T, path string) wireList {
	t.Helper()
	var l wireList
	if err := json.Unmarshal(mustCode(t, e.get(path), 200).body, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestListPaginatesAtTheFirstPageRevision pages through 25 config maps 10
// at a time while others are created, changed and deleted between pages:
// every page is served at the first page's revision, so the pages together
// are the list as it was.
func TestListPaginatesAtTheFirstPageRevision(t *testing.T) {
	e := newEnv(t)
	const base = "/api/v1/namespaces/default/configmaps"
	for i := range 25 {
		mustCode(t, e.post(base, configMapJSON(fmt.Sprintf("c%02d", i), nil)), 201)
	}
	whole := e.list(t, base)
	var got []string
	l := e.list(t, base+"?limit=10")
	for pages := 1; ; pages++ {
		if l.Metadata.ResourceVersion != whole.Metadata.ResourceVersion {
			t.Fatalf("page %d at revision %s, want %s", pages, l.Metadata.ResourceVersion, whole.Metadata.ResourceVersion)
		}
		for _, it := range l.Items {
			got = append(got, it.Metadata.Name+"@"+it.Metadata.ResourceVersion)
		}
		if l.Metadata.Continue == "" {
			if pages != 3 || l.Metadata.RemainingItemCount != nil {
				t.Fatalf("%d pages, last remainingItemCount %v", pages, l.Metadata.RemainingItemCount)
			}
			break
		}
		if want := int64(25 - 10*pages); *l.Metadata.RemainingItemCount != want {
			t.Fatalf("page %d: remainingItemCount %d, want %d", pages, *l.Metadata.RemainingItemCount, want)
		}
		// Writes between pages must not show.
		mustCode(t, e.post(base, configMapJSON(fmt.Sprintf("c%02da", 10*pages-5), nil)), 201)
		mustCode(t, e.request("DELETE", base+fmt.Sprintf("/c%02d", 10*pages+3), "", ""), 200)
		l = e.list(t, base+"?limit=10&continue="+l.Metadata.Continue)
	}
	var want []string
	for _, it := range whole.Items {
		want = append(want, it.Metadata.Name+"@"+it.Metadata.ResourceVersion)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("pages:\\n%v\\nwant\\n%v", got, want)
	}
}

func TestListContinueExpires(t *testing.T) {
	e := newEnv(t, func(c *store.Config, _ *ServerConfig) { c.HistorySize = 3 })
	const base = "/api/v1/namespaces/default/configmaps"
	for i := range 5 {
		mustCode(t, e.post(base, configMapJSON(fmt.Sprintf("c%d", i), nil)), 201)
	}
	l := e.list(t, base+"?limit=2")
	for i := range 5 {
		mustCode(t, e.post(base, configMapJSON(fmt.Sprintf("d%d", i), nil)), 201)
	}
	st := mustCode(t, e.get(base+"?limit=2&continue="+l.Metadata.Continue), 410).status(t)
	if st.Reason != api.ReasonExpired || !strings.Contains(st.Message, "continue") {
		t.Errorf("%+v", st)
	}
}

func TestListResourceVersionMatch(t *testing.T) {
	e := newEnv(t)
	const base = "/api/v1/namespaces/default/configmaps"
	mustCode(t, e.post(base, configMapJSON("a", nil)), 201)
	rv := e.list(t, base).Metadata.ResourceVersion
	mustCode(t, e.post(base, configMapJSON("b", nil)), 201)

	exact := e.list(t, base+"?resourceVersion="+rv+"&resourceVersionMatch=Exact")
	if exact.Metadata.ResourceVersion != rv || len(exact.Items) != 1 {
		t.Errorf("Exact %s: %+v", rv, exact)
	}
	for _, q := range []string{"resourceVersion=" + rv + "&resourceVersionMatch=NotOlderThan", "resourceVersion=0", ""} {
		if l := e.list(t, base+"?"+q); len(l.Items) != 2 || l.Metadata.ResourceVersion == rv {
			t.Errorf("%q: %+v", q, l)
		}
	}
	st := mustCode(t, e.get(base+"?resourceVersion=999&resourceVersionMatch=NotOlderThan"), 504).status(t)
	if st.Reason != api.ReasonTimeout || !strings.Contains(st.Message, "Too large resource version") {
		t.Errorf("%+v", st)
	}
	for q, mention := range map[string]string{
		"limit=-1":                   "limit",
		"limit=x":                    "limit",
		"resourceVersionMatch=Exact": "resourceVersionMatch",
		"resourceVersion=0&resourceVersionMatch=Exact": "resourceVersionMatch",
		"resourceVersion=1&resourceVersionMatch=Newer": "resourceVersionMatch",
		"continue=garbage":             "continue",
		"resourceVersion=1&continue=x": "continue",
		"fieldSelector=spec.foo%3Dx":   "fieldSelector",
	} {
		st := mustCode(t, e.get(base+"?"+q), 400).status(t)
		if !strings.Contains(st.Message, mention) {
			t.Errorf("%q: %q does not name %s", q, st.Message, mention)
		}
	}
}

func TestListFieldSelectorPaginated(t *testing.T) {
	e := newEnv(t)
	const base = "/api/v1/namespaces/default/configmaps"
	for i := range 6 {
		mustCode(t, e.post(base, configMapJSON(fmt.Sprintf("c%d", i), nil)), 201)
	}
	l := e.list(t, base+"?fieldSelector=metadata.name!%3Dc2&limit=4")
	if len(l.Items) != 4 || l.Items[2].Metadata.Name != "c3" || *l.Metadata.RemainingItemCount != 1 {
		t.Fatalf("%+v", l)
	}
	l = e.list(t, base+"?fieldSelector=metadata.name!%3Dc2&limit=4&continue="+l.Metadata.Continue)
	if len(l.Items) != 1 || l.Items[0].Metadata.Name != "c5" || l.Metadata.Continue != "" {
		t.Fatalf("%+v", l)
	}
}
