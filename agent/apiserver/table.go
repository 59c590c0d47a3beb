package apiserver

import (
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// Server-side tables: a list, get or watch whose Accept header asks for
// application/json;as=Table;g=meta.k8s.io;v=v1 (or v1beta1) is answered
// with a meta.k8s.io Table of the columns `shoal get` prints (api.TableColumns);
// the -o wide columns come last with priority 1, which kubectl shows only
// with -o wide. Each row's object is, after includeObject, the object's
// PartialObjectMetadata (the default), the whole object (Object) or
// nothing (None).

// Table is a meta.k8s.io Table.
type Table struct {
	api.TypeMeta      `json:",inline"`
	Metadata          api.ListMeta            `json:"metadata"`
	ColumnDefinitions []TableColumnDefinition `json:"columnDefinitions"`
	Rows              []TableRow              `json:"rows"`
}

// TableColumnDefinition describes one column.
type TableColumnDefinition struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Format      string `json:"format"`
	Description string `json:"description"`
	Priority    int32  `json:"priority"`
}

// TableRow is one object's cells, and the object itself after includeObject.
type TableRow struct {
	Cells  []any `json:"cells"`
	Object any   `json:"object,omitempty"`
}

// PartialObjectMetadata is an object reduced to its metadata.
type PartialObjectMetadata struct {
	api.TypeMeta `json:",inline"`
	Metadata     *api.ObjectMeta `json:"metadata"`
}

// Values of the includeObject query parameter.
const (
	includeNone     = "None"
	includeMetadata = "Metadata"
	includeObject   = "Object"
)

// tableVersion returns the meta.k8s.io version of the Table an Accept
// header asks for ("v1" preferred, else "v1beta1"), or "" for no Table.
func tableVersion(accept string) string {
	found := ""
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != "application/json" || params["as"] != "Table" || params["g"] != "meta.k8s.io" {
			continue
		}
		switch params["v"] {
		case "v1":
			return "v1"
		case "v1beta1":
			found = "v1beta1"
		}
	}
	return found
}

// tabler renders objects of one kind as a Table.
type tabler struct {
	apiVersion string
	include    string
	defs       []TableColumnDefinition
	kind       string
	env        func() api.TableEnv // read for every table: a watch's rows see the current endpoints
}

// newTabler reads what the request asks (nil when it wants no Table) and
// prepares the columns of the kind of t.
func (s *Server) newTabler(r *http.Request, t target) (*tabler, *api.StatusError) {
	info := t.info
	v := tableVersion(r.Header.Get("Accept"))
	if v == "" {
		return nil, nil
	}
	inc := r.URL.Query().Get("includeObject")
	switch inc {
	case "":
		inc = includeMetadata
	case includeNone, includeMetadata, includeObject:
	default:
		return nil, api.NewBadRequest("includeObject: %q must be None, Metadata or Object", inc)
	}
	narrow, _ := api.TableColumns(info.Kind, false, api.TableEnv{})
	header, _ := api.TableColumns(info.Kind, true, api.TableEnv{})
	tb := &tabler{apiVersion: "meta.k8s.io/" + v, include: inc, kind: info.Kind,
		env: func() api.TableEnv { return s.tableEnv(info, t.namespace) }}
	for i, h := range header {
		d := TableColumnDefinition{Name: h, Type: "string", Description: columnDescription(h)}
		if i == 0 && h == "NAME" {
			d.Format = "name"
		}
		if !slices.Contains(narrow, h) {
			d.Priority = 1 // shown with -o wide
		}
		tb.defs = append(tb.defs, d)
	}
	return tb, nil
}

// columnDescription is the help text of a column.
func columnDescription(h string) string {
	switch h {
	case "NAME":
		return "Name must be unique within a namespace."
	case "AGE":
		return "Time since the object was created."
	}
	return strings.ToLower(h[:1]) + strings.ToLower(h[1:]) + " as `shoal get` prints it."
}

// table renders objs; withDefs false leaves the column definitions out
// (every watch event after the first).
func (t *tabler) table(objs []api.Object, rv string, withDefs bool) *Table {
	tb := &Table{
		TypeMeta: api.TypeMeta{Kind: "Table", APIVersion: t.apiVersion},
		Metadata: api.ListMeta{ResourceVersion: rv},
		Rows:     make([]TableRow, 0, len(objs)),
	}
	if withDefs {
		tb.ColumnDefinitions = t.defs
	} else {
		tb.ColumnDefinitions = []TableColumnDefinition{}
	}
	_, rowOf := api.TableColumns(t.kind, true, t.env())
	for _, o := range objs {
		cells := rowOf(o)
		row := TableRow{Cells: make([]any, len(cells))}
		for i, c := range cells {
			row.Cells[i] = c
		}
		switch t.include {
		case includeMetadata:
			row.Object = PartialObjectMetadata{
				TypeMeta: api.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
				Metadata: o.GetObjectMeta(),
			}
		case includeObject:
			row.Object = withTypeMeta(o)
		}
		tb.Rows = append(tb.Rows, row)
	}
	return tb
}

// tableEnv is what the rows of kind need: the server's clock, and for
// Services the ready endpoints of namespace ns ("" all), read from the
// local store (after the request's read barrier, if any). An error reading
// them leaves the column "?".
func (s *Server) tableEnv(info api.KindInfo, ns string) api.TableEnv {
	env := api.TableEnv{Now: s.cfg.Clock()}
	if info.Kind != "Service" {
		return env
	}
	eps, _, err := s.cfg.Reader.List("Endpoints", ns, store.Selector{})
	if err != nil {
		return env
	}
	env.ReadyEndpoints = map[string]int{}
	for _, o := range eps {
		e, ok := o.(*api.Endpoints)
		if !ok {
			continue
		}
		n := 0
		for _, ss := range e.Subsets {
			n += len(ss.Addresses)
		}
		env.ReadyEndpoints[e.Namespace+"/"+e.Name] = n
	}
	return env
}

// writeTable sends objs as a Table.
func (s *Server) writeTable(w http.ResponseWriter, r *http.Request, t *tabler, objs []api.Object, rev int64) {
	rv := ""
	if rev > 0 {
		rv = strconv.FormatInt(rev, 10)
	}
	s.WriteJSON(w, r, http.StatusOK, t.table(objs, rv, true))
}
