package apiserver

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// MaxListLimit is the largest page a list's limit may ask for; a larger
// limit is an error naming it.
const MaxListLimit = 100000

// pastReader is a Reader that can also list as of a retained revision
// (*store.Store can); later pages of a paginated list are served at the
// first page's revision with it. Without it a later page is served only
// while the store has not moved since the first page, else 410 Expired.
type pastReader interface {
	ListAt(kind, namespace string, sel store.Selector, rev int64) ([]api.Object, error)
}

// continueToken is the opaque continue of a paginated list: the revision
// of the first page and the namespace and name of the last item sent.
// Version 1 is the only one.
type continueToken struct {
	V         int    `json:"v"`
	Rev       int64  `json:"rev"`
	Namespace string `json:"ns,omitempty"`
	Name      string `json:"name"`
}

func encodeContinue(c continueToken) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var c continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.V != 1 || c.Rev <= 0 || c.Name == "" {
		return c, errors.New("not a continue token this server issued")
	}
	return c, nil
}

// listOptions are the list parameters of a request, checked.
type listOptions struct {
	limit int64
	cont  *continueToken
	rv    string // "" (most recent, linearizable), "0" (any) or a revision
	rvNum int64
	exact bool
}

func parseListOptions(r *http.Request) (listOptions, *api.StatusError) {
	var o listOptions
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > MaxListLimit {
			return o, api.NewBadRequest("limit: %q must be an integer from 0 (no limit) to %d", v, MaxListLimit)
		}
		o.limit = n
	}
	o.rv = q.Get("resourceVersion")
	if o.rv != "" {
		n, err := strconv.ParseInt(o.rv, 10, 64)
		if err != nil || n < 0 {
			return o, api.NewBadRequest("resourceVersion: %q is not a non-negative integer", o.rv)
		}
		o.rvNum = n
	}
	match := q.Get("resourceVersionMatch")
	switch match {
	case "", "NotOlderThan":
	case "Exact":
		o.exact = true
	default:
		return o, api.NewBadRequest("resourceVersionMatch: %q must be NotOlderThan or Exact", match)
	}
	if match != "" && o.rv == "" {
		return o, api.NewBadRequest("resourceVersionMatch: %q is only allowed with a resourceVersion", match)
	}
	if o.exact && o.rvNum == 0 {
		return o, api.NewBadRequest("resourceVersionMatch: Exact is not allowed with resourceVersion \"0\"")
	}
	// As Kubernetes: a limited list at a given non-zero resourceVersion
	// without a match is served at exactly that revision.
	if match == "" && o.limit > 0 && o.rvNum > 0 {
		o.exact = true
	}
	if v := q.Get("continue"); v != "" {
		if o.rv != "" || match != "" {
			return o, api.NewBadRequest("continue: resourceVersion and resourceVersionMatch are not allowed with continue (the token carries the revision)")
		}
		c, err := decodeContinue(v)
		if err != nil {
			return o, api.NewBadRequest("continue: %q is %v", v, err)
		}
		o.cont = &c
	}
	return o, nil
}

// listObjects reads the objects o asks for and the revision they are at.
func (s *Server) listObjects(r *http.Request, t target, sel store.Selector, o listOptions) ([]api.Object, int64, *api.StatusError) {
	var at int64 // revision to serve at exactly; 0 for the current state
	switch {
	case o.cont != nil:
		at = o.cont.Rev
	case o.exact:
		at = o.rvNum
	case o.rv == "":
		if err := s.barrier(r); err != nil {
			return nil, 0, s.ToStatus(err, t.info, "")
		}
	}
	objs, rev, err := s.cfg.Reader.List(t.info.Kind, t.namespace, sel)
	if err != nil {
		return nil, 0, s.ToStatus(err, t.info, "")
	}
	// NotOlderThan a revision this replica has not reached: wait for what
	// is committed, then give up as Kubernetes does.
	if needed := max(at, o.rvNum); rev < needed {
		if err := s.barrier(r); err != nil {
			return nil, 0, s.ToStatus(err, t.info, "")
		}
		if objs, rev, err = s.cfg.Reader.List(t.info.Kind, t.namespace, sel); err != nil {
			return nil, 0, s.ToStatus(err, t.info, "")
		}
		if rev < needed {
			return nil, 0, api.NewTimeout(fmt.Sprintf("Too large resource version: %d, current: %d", needed, rev))
		}
	}
	if at == 0 || at == rev {
		return objs, rev, nil
	}
	expired := func(why string) *api.StatusError {
		what := "resourceVersion " + strconv.FormatInt(at, 10)
		if o.cont != nil {
			what = "the continue token (revision " + strconv.FormatInt(at, 10) + ")"
		}
		return api.NewGone(fmt.Sprintf("%s is too old to serve a consistent list: %s; list again from the start", what, why))
	}
	pr, ok := s.cfg.Reader.(pastReader)
	if !ok {
		return nil, 0, expired("this server lists only at its current revision " + strconv.FormatInt(rev, 10))
	}
	objs, err = pr.ListAt(t.info.Kind, t.namespace, sel, at)
	if errors.Is(err, store.ErrTooOld) {
		return nil, 0, expired(err.Error())
	}
	if err != nil {
		return nil, 0, s.ToStatus(err, t.info, "")
	}
	return objs, at, nil
}

// page cuts objs (sorted by namespace and name) to the page o asks for and
// returns the list metadata to send with it.
func page(objs []api.Object, rev int64, o listOptions) ([]api.Object, api.ListMeta) {
	meta := api.ListMeta{ResourceVersion: strconv.FormatInt(rev, 10)}
	if o.cont != nil {
		after := func(m *api.ObjectMeta) bool {
			return m.Namespace > o.cont.Namespace || (m.Namespace == o.cont.Namespace && m.Name > o.cont.Name)
		}
		i := 0
		for i < len(objs) && !after(objs[i].GetObjectMeta()) {
			i++
		}
		objs = objs[i:]
	}
	if o.limit > 0 && int64(len(objs)) > o.limit {
		last := objs[o.limit-1].GetObjectMeta()
		left := int64(len(objs)) - o.limit
		meta.Continue = encodeContinue(continueToken{V: 1, Rev: rev, Namespace: last.Namespace, Name: last.Name})
		meta.RemainingItemCount = &left
		objs = objs[:o.limit]
	}
	return objs, meta
}

// serveList answers a list: JSON or Table, paginated with limit and
// continue, at the revision resourceVersion and resourceVersionMatch ask
// for.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, t target, sel store.Selector) {
	o, serr := parseListOptions(r)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	tb, serr := s.newTabler(r, t)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	all, rev, serr := s.listObjects(r, t, sel, o)
	if serr != nil {
		s.WriteError(w, r, serr)
		return
	}
	objs, meta := page(all, rev, o)
	if tb != nil {
		out := tb.table(objs, meta.ResourceVersion, true)
		out.Metadata = meta
		s.WriteJSON(w, r, http.StatusOK, out)
		return
	}
	items := make([]api.Object, len(objs))
	for i, o := range objs {
		items[i] = withTypeMeta(o)
	}
	s.WriteJSON(w, r, http.StatusOK, struct {
		api.TypeMeta `json:",inline"`
		Metadata     api.ListMeta `json:"metadata"`
		Items        []api.Object `json:"items"`
	}{
		TypeMeta: api.TypeMeta{Kind: t.info.Kind + "List", APIVersion: t.info.APIVersion()},
		Metadata: meta,
		Items:    items,
	})
}
