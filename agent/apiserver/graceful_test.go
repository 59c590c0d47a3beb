package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

func TestDecideDelete(t *testing.T) {
	bound := func(mut ...func(*api.Pod)) *api.Pod {
		p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "p", Namespace: "default", UID: "u"}}
		p.Spec.NodeName = "n1"
		p.Spec.TerminationGracePeriodSeconds = ptr[int64](20)
		for _, m := range mut {
			m(p)
		}
		return p
	}
	terminating := func(at time.Duration, grace int64) func(*api.Pod) {
		return func(p *api.Pod) {
			ts := api.NewTime(testNow.Add(at))
			p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &grace
		}
	}
	cases := []struct {
		name      string
		obj       api.Object
		requested *int64
		want      api.DeleteAction
		deadline  time.Duration // for api.DeleteMark
		grace     int64
	}{
		{"not a pod", &api.ConfigMap{}, nil, api.DeleteNow, 0, 0},
		{"bound pod: its spec's grace", bound(), nil, api.DeleteMark, 20 * time.Second, 20},
		{"bound pod: the requested grace", bound(), ptr[int64](5), api.DeleteMark, 5 * time.Second, 5},
		{"no spec grace: 30s", bound(func(p *api.Pod) { p.Spec.TerminationGracePeriodSeconds = nil }), nil, api.DeleteMark, 30 * time.Second, 30},
		{"grace 0 is immediate", bound(), ptr[int64](0), api.DeleteNow, 0, 0},
		{"spec grace 0 is immediate", bound(func(p *api.Pod) { p.Spec.TerminationGracePeriodSeconds = ptr[int64](0) }), nil, api.DeleteNow, 0, 0},
		{"unbound pod is immediate", bound(func(p *api.Pod) { p.Spec.NodeName = "" }), nil, api.DeleteNow, 0, 0},
		{"finished pod is immediate", bound(func(p *api.Pod) { p.Status.Phase = api.PodSucceeded }), nil, api.DeleteNow, 0, 0},
		{"failed pod is immediate", bound(func(p *api.Pod) { p.Status.Phase = api.PodFailed }), nil, api.DeleteNow, 0, 0},
		{"terminating, same grace again: no-op", bound(terminating(20*time.Second, 20)), nil, api.DeleteNoop, 0, 0},
		{"terminating, longer grace: no-op", bound(terminating(10*time.Second, 10)), ptr[int64](60), api.DeleteNoop, 0, 0},
		{"terminating, shorter grace: shortened", bound(terminating(20*time.Second, 20)), ptr[int64](3), api.DeleteMark, 3 * time.Second, 3},
		{"terminating, force: immediate", bound(terminating(20*time.Second, 20)), ptr[int64](0), api.DeleteNow, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := json.Marshal(tc.obj)
			got, next := api.DecideDelete(tc.obj, tc.requested, testNow)
			if after, _ := json.Marshal(tc.obj); string(after) != string(before) {
				t.Errorf("the input was changed")
			}
			if got != tc.want {
				t.Fatalf("action %d, want %d", got, tc.want)
			}
			if got != api.DeleteMark {
				if next != nil {
					t.Errorf("a %d comes with an object", got)
				}
				return
			}
			m := next.GetObjectMeta()
			if m.DeletionTimestamp == nil || !m.DeletionTimestamp.Equal(testNow.Add(tc.deadline)) {
				t.Errorf("deletionTimestamp %v, want now+%s", m.DeletionTimestamp, tc.deadline)
			}
			if m.DeletionGracePeriodSeconds == nil || *m.DeletionGracePeriodSeconds != tc.grace {
				t.Errorf("deletionGracePeriodSeconds %v, want %d", m.DeletionGracePeriodSeconds, tc.grace)
			}
		})
	}
}

const boundPodJSON = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s"},"spec":{"nodeName":"%s","terminationGracePeriodSeconds":20,"containers":[{"name":"c","image":"busybox"}]}}`

func createPod(e *env, name, node string) *api.Pod {
	e.t.Helper()
	return decode[api.Pod](e.t, mustCode(e.t, e.post("/api/v1/namespaces/default/pods", fmt.Sprintf(boundPodJSON, name, node)), http.StatusCreated))
}

func deleteWith(e *env, path, body string) response {
	e.t.Helper()
	return e.request(http.MethodDelete, path, "application/json", body)
}

func checkTerminating(t *testing.T, p *api.Pod, after time.Duration, grace int64) {
	t.Helper()
	if p.DeletionTimestamp == nil || !p.DeletionTimestamp.Equal(testNow.Add(after)) {
		t.Errorf("deletionTimestamp %v, want now+%s", p.DeletionTimestamp, after)
	}
	if p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != grace {
		t.Errorf("deletionGracePeriodSeconds %v, want %d", p.DeletionGracePeriodSeconds, grace)
	}
}

func TestDeleteBoundPodIsGraceful(t *testing.T) {
	e := newEnv(t)
	const base = "/api/v1/namespaces/default/pods/"
	created := createPod(e, "web", "n1")
	w := e.openWatch(t, "/api/v1/namespaces/default/pods?watch=true&resourceVersion="+created.ResourceVersion)

	// The spec's grace: the object stays, terminating, and is returned.
	p := decode[api.Pod](t, mustCode(t, e.del(base+"web"), http.StatusOK))
	checkTerminating(t, p, 20*time.Second, 20)
	got := decode[api.Pod](t, mustCode(t, e.get(base+"web"), http.StatusOK))
	checkTerminating(t, got, 20*time.Second, 20)
	if ev := w.next(t); ev.Type != "MODIFIED" || ev.meta(t).DeletionTimestamp == nil {
		t.Fatalf("first event %s %s, want MODIFIED with a deletionTimestamp", ev.Type, ev.Object)
	}

	// A second delete asking for no less time changes nothing.
	again := decode[api.Pod](t, mustCode(t, e.del(base+"web"), http.StatusOK))
	if again.ResourceVersion != got.ResourceVersion {
		t.Errorf("a repeated delete wrote the pod: resourceVersion %s → %s", got.ResourceVersion, again.ResourceVersion)
	}
	checkTerminating(t, again, 20*time.Second, 20)

	// A shorter grace, from the query, brings the deadline forward.
	short := decode[api.Pod](t, mustCode(t, e.del(base+"web?gracePeriodSeconds=4"), http.StatusOK))
	checkTerminating(t, short, 4*time.Second, 4)

	// An update does not clear the deletion fields (the server owns them).
	upd := *short
	upd.DeletionTimestamp, upd.DeletionGracePeriodSeconds = nil, nil
	upd.Labels = map[string]string{"x": "y"}
	b, _ := json.Marshal(&upd)
	updated := decode[api.Pod](t, mustCode(t, e.put(base+"web", string(b)), http.StatusOK))
	checkTerminating(t, updated, 4*time.Second, 4)
	if ev := w.next(t); ev.Type != "MODIFIED" {
		t.Fatalf("event %s, want MODIFIED", ev.Type)
	}
	w.next(t) // the update

	// The agent's final delete: grace 0 with the uid as a precondition.
	final := fmt.Sprintf(`{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0,"preconditions":{"uid":%q}}`, created.UID)
	mustCode(t, deleteWith(e, base+"web", final), http.StatusOK)
	mustCode(t, e.get(base+"web"), http.StatusNotFound)
	if ev := w.next(t); ev.Type != "DELETED" {
		t.Fatalf("last event %s, want DELETED", ev.Type)
	}
}

func TestDeletePodGraceFromBodyAndQuery(t *testing.T) {
	e := newEnv(t)
	const base = "/api/v1/namespaces/default/pods/"
	createPod(e, "body", "n1")
	p := decode[api.Pod](t, mustCode(t, deleteWith(e, base+"body", `{"gracePeriodSeconds":5}`), http.StatusOK))
	checkTerminating(t, p, 5*time.Second, 5)

	createPod(e, "query", "n1")
	p = decode[api.Pod](t, mustCode(t, e.del(base+"query?gracePeriodSeconds=7"), http.StatusOK))
	checkTerminating(t, p, 7*time.Second, 7)

	createPod(e, "both", "n1") // the body wins
	p = decode[api.Pod](t, mustCode(t, deleteWith(e, base+"both?gracePeriodSeconds=7", `{"gracePeriodSeconds":9}`), http.StatusOK))
	checkTerminating(t, p, 9*time.Second, 9)

	for _, bad := range []string{"?gracePeriodSeconds=x", "?gracePeriodSeconds=-1"} {
		st := mustCode(t, e.del(base+"both"+bad), http.StatusBadRequest).status(t)
		if st.Reason != api.ReasonBadRequest {
			t.Errorf("%s: %+v", bad, st)
		}
	}
}

func TestDeletePodImmediately(t *testing.T) {
	e := newEnv(t)
	const base = "/api/v1/namespaces/default/pods/"
	// Grace 0 (force), from the body or the query.
	createPod(e, "forced", "n1")
	mustCode(t, deleteWith(e, base+"forced", `{"gracePeriodSeconds":0}`), http.StatusOK)
	mustCode(t, e.get(base+"forced"), http.StatusNotFound)
	createPod(e, "forced2", "n1")
	mustCode(t, e.del(base+"forced2?gracePeriodSeconds=0"), http.StatusOK)
	mustCode(t, e.get(base+"forced2"), http.StatusNotFound)
	// Not bound to a node: nothing to stop.
	mustCode(t, e.post("/api/v1/namespaces/default/pods", fmt.Sprintf(podJSON, "pending", "x")), http.StatusCreated)
	p := decode[api.Pod](t, mustCode(t, e.del(base+"pending"), http.StatusOK))
	if p.Name != "pending" || p.DeletionTimestamp != nil {
		t.Errorf("returned %+v", p.ObjectMeta)
	}
	mustCode(t, e.get(base+"pending"), http.StatusNotFound)
	// A terminating pod deleted with grace 0 goes at once.
	createPod(e, "both", "n1")
	mustCode(t, e.del(base+"both"), http.StatusOK)
	mustCode(t, e.del(base+"both?gracePeriodSeconds=0"), http.StatusOK)
	mustCode(t, e.get(base+"both"), http.StatusNotFound)
	// Other kinds go at once whatever the grace.
	mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("cm", nil)), http.StatusCreated)
	mustCode(t, deleteWith(e, "/api/v1/namespaces/default/configmaps/cm", `{"gracePeriodSeconds":30}`), http.StatusOK)
	mustCode(t, e.get("/api/v1/namespaces/default/configmaps/cm"), http.StatusNotFound)
}

func TestDeletePodPreconditions(t *testing.T) {
	e := newEnv(t)
	const base = "/api/v1/namespaces/default/pods/"
	p := createPod(e, "web", "n1")
	st := mustCode(t, deleteWith(e, base+"web", `{"preconditions":{"uid":"other"}}`), http.StatusConflict).status(t)
	if st.Reason != api.ReasonConflict {
		t.Errorf("uid mismatch: %+v", st)
	}
	mustCode(t, deleteWith(e, base+"web", `{"preconditions":{"resourceVersion":"1"}}`), http.StatusConflict)
	if got := decode[api.Pod](t, mustCode(t, e.get(base+"web"), http.StatusOK)); got.DeletionTimestamp != nil {
		t.Fatal("a failed precondition marked the pod")
	}
	body := fmt.Sprintf(`{"preconditions":{"uid":%q,"resourceVersion":%q}}`, p.UID, p.ResourceVersion)
	marked := decode[api.Pod](t, mustCode(t, deleteWith(e, base+"web", body), http.StatusOK))
	checkTerminating(t, marked, 20*time.Second, 20)
	// The resourceVersion moved with the mark: the old one no longer holds.
	mustCode(t, deleteWith(e, base+"web", body), http.StatusConflict)
}

func TestClientDeleteWithOptions(t *testing.T) {
	e, c, ctx := newClientEnv(t)
	createPod(e, "web", "n1")
	createPod(e, "db", "n1")
	obj, err := c.DeleteWithOptions(ctx, "pods", "default", "web", api.DeleteOptions{GracePeriodSeconds: ptr[int64](3)})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := obj.(*api.Pod)
	if !ok {
		t.Fatalf("%T", obj)
	}
	checkTerminating(t, p, 3*time.Second, 3)
	// The plain Delete accepts the 200 with a terminating object.
	if err := c.Delete(ctx, "Pod", "default", "db"); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "Pod", "default", "db")
	if err != nil || got.GetObjectMeta().DeletionTimestamp == nil {
		t.Fatalf("after Delete: %v %+v", err, got)
	}
	// The final delete of an agent.
	_, err = c.DeleteWithOptions(ctx, "Pod", "default", "web", api.DeleteOptions{
		GracePeriodSeconds: ptr[int64](0), Preconditions: &api.Preconditions{UID: &p.UID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "Pod", "default", "web"); !api.IsNotFound(err) {
		t.Fatalf("after the final delete: %v", err)
	}
	if _, err := c.DeleteWithOptions(ctx, "Pod", "default", "web", api.DeleteOptions{GracePeriodSeconds: ptr[int64](0)}); !api.IsNotFound(err) {
		t.Fatalf("deleting it again: %v", err)
	}
}

// racingBackend applies a status write to the pod just before the first
// proposal, as a node's status update racing a delete would.
type racingBackend struct {
	*testBackend
	raced atomic.Bool
}

func (b *racingBackend) Propose(ctx context.Context, ops []store.Op) ([]store.Result, error) {
	if b.raced.CompareAndSwap(false, true) {
		obj, err := b.st.Get(store.Key{Kind: "Pod", Namespace: "default", Name: "web"})
		if err != nil {
			return nil, err
		}
		p := obj.DeepCopyObject().(*api.Pod)
		p.Status.Phase = api.PodRunning
		if res := b.st.Apply([]store.Op{{Type: store.OpUpdateStatus, Object: p}}); res[0].Err != nil {
			return nil, res[0].Err
		}
	}
	return b.testBackend.Propose(ctx, ops)
}

// A status write between the read and the proposal of a delete that asked
// for no resourceVersion is not a conflict the client sees: the mark and
// the final uid-checked delete both go through.
func TestDeletePodRetriesAnUnaskedConflict(t *testing.T) {
	for _, body := range []string{``, `{"gracePeriodSeconds":0,"preconditions":{"uid":"%s"}}`} {
		e := newEnv(t)
		p := createPod(e, "web", "n1")
		rb := &racingBackend{testBackend: e.be}
		e.srv.prop.backend = rb
		if body != "" {
			body = fmt.Sprintf(body, p.UID)
		}
		mustCode(t, deleteWith(e, "/api/v1/namespaces/default/pods/web", body), http.StatusOK)
		if !rb.raced.Load() {
			t.Fatal("no race happened")
		}
		got, err := e.st.Get(store.Key{Kind: "Pod", Namespace: "default", Name: "web"})
		switch {
		case body == "" && (err != nil || got.GetObjectMeta().DeletionTimestamp == nil):
			t.Errorf("graceful delete after a race: %v %v", err, got)
		case body != "" && err == nil:
			t.Errorf("final delete after a race left the pod")
		}
	}
}
