package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

// getAccept GETs path with an Accept header.
func (e *env) getAccept(path, accept string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// wireTable is a Table as a client decodes it.
type wireTable struct {
	Kind              string                  `json:"kind"`
	APIVersion        string                  `json:"apiVersion"`
	Metadata          api.ListMeta            `json:"metadata"`
	ColumnDefinitions []TableColumnDefinition `json:"columnDefinitions"`
	Rows              []struct {
		Cells  []string        `json:"cells"`
		Object json.RawMessage `json:"object"`
	} `json:"rows"`
}

func TestTableList(t *testing.T) {
	e := newEnv(t)
	seedLabeledPod(e, "a", "x")
	seedLabeledPod(e, "b", "y")
	tb := decode[wireTable](t, mustCode(t, e.getAccept("/api/v1/namespaces/default/pods?labelSelector=app%3Dx", tableAccept), 200))
	if tb.Kind != "Table" || tb.APIVersion != "meta.k8s.io/v1" || tb.Metadata.ResourceVersion == "" {
		t.Errorf("table: %s %s rv %q", tb.Kind, tb.APIVersion, tb.Metadata.ResourceVersion)
	}
	// The columns are shoal get's, the wide ones at priority 1.
	header, _ := api.TableColumns("Pod", true, api.TableEnv{})
	var names []string
	for _, d := range tb.ColumnDefinitions {
		names = append(names, d.Name)
		wide := d.Name == "IP" || d.Name == "NODE"
		if (d.Priority == 1) != wide || d.Type != "string" {
			t.Errorf("column %+v", d)
		}
	}
	if !slices.Equal(names, header) || tb.ColumnDefinitions[0].Format != "name" {
		t.Errorf("columns %v, want %v", names, header)
	}
	if len(tb.Rows) != 1 || !slices.Equal(tb.Rows[0].Cells, []string{"a", "0/1", "Pending", "0", "0s", "<none>", "<none>"}) {
		t.Fatalf("rows: %+v", tb.Rows)
	}
	// The default object is the metadata only.
	var pom struct {
		Kind       string         `json:"kind"`
		APIVersion string         `json:"apiVersion"`
		Metadata   api.ObjectMeta `json:"metadata"`
		Spec       any            `json:"spec"`
	}
	if err := json.Unmarshal(tb.Rows[0].Object, &pom); err != nil || pom.Kind != "PartialObjectMetadata" ||
		pom.APIVersion != "meta.k8s.io/v1" || pom.Metadata.Name != "a" || pom.Metadata.Labels["app"] != "x" || pom.Spec != nil {
		t.Errorf("row object %s (%v)", tb.Rows[0].Object, err)
	}

	tb = decode[wireTable](t, mustCode(t, e.getAccept("/api/v1/pods?includeObject=Object", tableAccept), 200))
	if len(tb.Rows) != 2 || !strings.Contains(string(tb.Rows[0].Object), `"kind":"Pod"`) || !strings.Contains(string(tb.Rows[0].Object), `"spec"`) {
		t.Errorf("includeObject=Object: %+v", tb.Rows)
	}
	tb = decode[wireTable](t, mustCode(t, e.getAccept("/api/v1/pods?includeObject=None", tableAccept), 200))
	if len(tb.Rows) != 2 || tb.Rows[0].Object != nil {
		t.Errorf("includeObject=None: %+v", tb.Rows)
	}
	for _, p := range []string{"/api/v1/pods?includeObject=All", "/api/v1/pods?watch=true&includeObject=All", "/api/v1/namespaces/default/pods/a?includeObject=All"} {
		st := mustCode(t, e.getAccept(p, tableAccept), 400).status(t)
		if !strings.Contains(st.Message, "includeObject") {
			t.Errorf("%s: %s", p, st.Message)
		}
	}
	if n := len(e.rec.all()); n != 0 {
		t.Errorf("a watch refused for its includeObject opened %d watchers", n)
	}
	// Only v1beta1 asked: the same Table under that version.
	tb = decode[wireTable](t, mustCode(t, e.getAccept("/api/v1/pods", "application/json;as=Table;v=v1beta1;g=meta.k8s.io"), 200))
	if tb.APIVersion != "meta.k8s.io/v1beta1" {
		t.Errorf("v1beta1: %s", tb.APIVersion)
	}
	// Without as=Table: the list.
	if r := mustCode(t, e.getAccept("/api/v1/pods", "application/json"), 200); !strings.Contains(string(r.body), `"kind":"PodList"`) {
		t.Errorf("plain list: %s", r.body)
	}
}

func TestTableGetAndServiceEndpoints(t *testing.T) {
	e := newEnv(t)
	svc := &api.Service{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: api.ServiceSpec{Type: "ClusterIP", ClusterIP: "10.96.0.10", Ports: []api.ServicePort{{Port: 80, Protocol: "TCP"}}}}
	e.seed(svc)
	ep := &api.Endpoints{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default"},
		Subsets: []api.EndpointSubset{{Addresses: []api.EndpointAddress{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}}, Ports: []api.EndpointPort{{Port: 80}}}}}
	e.seed(ep)
	tb := decode[wireTable](t, mustCode(t, e.getAccept("/api/v1/namespaces/default/services/web", tableAccept), 200))
	if len(tb.Rows) != 1 || !slices.Equal(tb.Rows[0].Cells, []string{"web", "ClusterIP", "10.96.0.10", "80/TCP", "2", "0s"}) {
		t.Errorf("service row: %+v", tb.Rows)
	}
	// The status subresource is never a Table.
	if r := mustCode(t, e.getAccept("/api/v1/namespaces/default/services/web/status", tableAccept), 200); !strings.Contains(string(r.body), `"kind":"Service"`) {
		t.Errorf("status: %s", r.body)
	}
}

// TestTableWatch: with as=Table every event carries a one-row Table, and
// only the first carries the column definitions.
func TestTableWatch(t *testing.T) {
	e := newEnv(t)
	seedLabeledPod(e, "a", "x")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+"/api/v1/namespaces/default/pods?watch=true", nil)
	req.Header.Set("Accept", tableAccept)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	events := make(chan string, 10)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			events <- sc.Text()
		}
	}()
	next := func() (string, wireTable) {
		t.Helper()
		select {
		case l, ok := <-events:
			if !ok {
				t.Fatal("watch ended")
			}
			var ev struct {
				Type   string    `json:"type"`
				Object wireTable `json:"object"`
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return ev.Type, ev.Object
		case <-time.After(30 * time.Second):
			t.Fatal("timed out waiting for a watch event")
		}
		return "", wireTable{}
	}
	typ, tb := next()
	if typ != "ADDED" || tb.Kind != "Table" || len(tb.ColumnDefinitions) != 7 || len(tb.Rows) != 1 || tb.Rows[0].Cells[0] != "a" {
		t.Errorf("first event %s %+v", typ, tb)
	}
	seedLabeledPod(e, "b", "x")
	typ, tb = next()
	if typ != "ADDED" || tb.Kind != "Table" || len(tb.ColumnDefinitions) != 0 || len(tb.Rows) != 1 || tb.Rows[0].Cells[0] != "b" || tb.Metadata.ResourceVersion == "" {
		t.Errorf("second event %s %+v", typ, tb)
	}
}

func TestTableVersion(t *testing.T) {
	for accept, want := range map[string]string{
		tableAccept: "v1",
		"application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json": "v1beta1",
		"application/json": "",
		"":                 "",
		"application/json;as=Table;v=v2;g=meta.k8s.io": "",
		"application/json;as=Table;v=v1":               "",
		"application/yaml;as=Table;v=v1;g=meta.k8s.io": "",
		"application/json;as=Table;g=meta.k8s.io;v=v1": "v1",
	} {
		if got := tableVersion(accept); got != want {
			t.Errorf("tableVersion(%q) = %q, want %q", accept, got, want)
		}
	}
}
