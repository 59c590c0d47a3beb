package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"pgregory.net/rapid"
)

// modelPod is what the model remembers of a pod.
type modelPod struct {
	node string
	rev  int64
	gen  int64
}

// TestStoreModelProperty runs random operations against the store and a
// trivial model, checking after every step that results, revisions and
// generations agree, and that the node index returns exactly what a full
// scan does. At the end, a watcher started before the first operation
// rebuilds the same set of pods, and a snapshot restores to the same bytes.
func TestStoreModelProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := New(Config{HistorySize: 1000, WatchBuffer: 1000})
		w, err := s.Watch("Pod", "", 0, Selector{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		model := map[nsName]*modelPod{}
		var rev int64
		nodes := []string{"", "n1", "n2", "n3"}
		genKey := rapid.Custom(func(t *rapid.T) nsName {
			return nsName{rapid.SampledFrom([]string{"a", "b"}).Draw(t, "ns"), rapid.SampledFrom([]string{"p", "q", "r", "s"}).Draw(t, "name")}
		})

		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for range steps {
			k := genKey.Draw(t, "key")
			node := rapid.SampledFrom(nodes).Draw(t, "node")
			cur, exists := model[k]
			stale := rapid.Bool().Draw(t, "stale")
			var op Op
			var want error
			switch typ := rapid.SampledFrom([]OpType{OpCreate, OpUpdate, OpUpdateStatus, OpDelete}).Draw(t, "op"); typ {
			case OpCreate:
				op = create(pod(k.ns, k.name, node, nil))
				if exists {
					want = ErrAlreadyExists
				}
			case OpUpdate, OpUpdateStatus:
				p := pod(k.ns, k.name, node, map[string]string{"step": fmt.Sprint(rev)})
				p.Status.Phase = "Running"
				if exists {
					p.ResourceVersion = fmt.Sprint(cur.rev)
					if stale {
						p.ResourceVersion = fmt.Sprint(cur.rev + 1000)
					}
				}
				op = Op{Type: typ, Object: p}
				switch {
				case !exists:
					want = ErrNotFound
				case stale:
					want = ErrConflict
				}
			case OpDelete:
				op = Op{Type: OpDelete, Key: Key{Kind: "Pod", Namespace: k.ns, Name: k.name}}
				if exists && stale {
					op.ResourceVersion = cur.rev + 1000
				}
				switch {
				case !exists:
					want = ErrNotFound
				case stale:
					want = ErrConflict
				}
			}
			res := s.Apply([]Op{op})[0]
			if want != nil {
				if !errors.Is(res.Err, want) {
					t.Fatalf("op %v on %v: err %v, want %v", op.Type, k, res.Err, want)
				}
				continue
			}
			if res.Err != nil {
				t.Fatalf("op %v on %v: %v", op.Type, k, res.Err)
			}
			rev++
			switch op.Type {
			case OpCreate:
				model[k] = &modelPod{node: node, rev: rev, gen: 1}
			case OpUpdate:
				if node != cur.node {
					cur.gen++
				}
				cur.node, cur.rev = node, rev
			case OpUpdateStatus:
				cur.rev = rev
			case OpDelete:
				delete(model, k)
			}
			if got := res.Object.GetObjectMeta().ResourceVersion; got != fmt.Sprint(rev) {
				t.Fatalf("result rv %s, want %d", got, rev)
			}
			if s.Revision() != rev {
				t.Fatalf("revision %d, want %d", s.Revision(), rev)
			}

			// Every pod agrees with the model.
			all, listRev, err := s.List("Pod", "", Selector{})
			if err != nil || listRev != rev || len(all) != len(model) {
				t.Fatalf("List: %d pods at %d (%v), model has %d at %d", len(all), listRev, err, len(model), rev)
			}
			for _, o := range all {
				p := o.(*api.Pod)
				m := model[nsName{p.Namespace, p.Name}]
				if m == nil || p.Spec.NodeName != m.node || p.ResourceVersion != fmt.Sprint(m.rev) || p.Generation != m.gen {
					t.Fatalf("pod %s/%s node=%q rv=%s gen=%d, model %+v", p.Namespace, p.Name, p.Spec.NodeName, p.ResourceVersion, p.Generation, m)
				}
			}
			// The node index equals a full scan, with and without namespace.
			for _, n := range nodes {
				for _, ns := range []string{"", "a", "b"} {
					fs := Selector{Fields: api.FieldSelector{{Field: "spec.nodeName", Operator: "=", Value: n}}}
					indexed, _, err := s.List("Pod", ns, fs)
					if err != nil {
						t.Fatal(err)
					}
					var scanned []api.Object
					for _, o := range all {
						if o.(*api.Pod).Spec.NodeName == n && (ns == "" || o.GetObjectMeta().Namespace == ns) {
							scanned = append(scanned, o)
						}
					}
					if names(indexed) != names(scanned) {
						t.Fatalf("node %q ns %q: index %q, scan %q", n, ns, names(indexed), names(scanned))
					}
				}
			}
		}

		// A watcher from the start rebuilds the same pods.
		seen := map[nsName]string{}
		for next := int64(1); next <= rev; next++ {
			var ev Event
			select {
			case ev = <-w.Events():
			default:
				t.Fatalf("event %d missing (err %v)", next, w.Err())
			}
			if ev.Revision != next {
				t.Fatalf("event revision %d, want %d", ev.Revision, next)
			}
			m := ev.Object.GetObjectMeta()
			if ev.Type == Deleted {
				delete(seen, nsName{m.Namespace, m.Name})
			} else {
				seen[nsName{m.Namespace, m.Name}] = m.ResourceVersion
			}
		}
		if len(seen) != len(model) {
			t.Fatalf("watch rebuilt %d pods, model has %d", len(seen), len(model))
		}
		for k, m := range model {
			if seen[k] != fmt.Sprint(m.rev) {
				t.Fatalf("watch has %v at rv %s, model at %d", k, seen[k], m.rev)
			}
		}

		// Snapshot and restore round-trip.
		var a, b bytes.Buffer
		if err := s.Snapshot(&a); err != nil {
			t.Fatal(err)
		}
		r := New(Config{})
		if err := r.Restore(bytes.NewReader(a.Bytes())); err != nil {
			t.Fatal(err)
		}
		if err := r.Snapshot(&b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) || r.Revision() != rev {
			t.Fatalf("restore differs (revision %d, want %d)", r.Revision(), rev)
		}
	})
}
