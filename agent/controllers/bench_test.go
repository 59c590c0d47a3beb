package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// BenchmarkReconcileOnePodChange measures what the leader does when one pod
// of a cluster changes: map the event to the controllers' keys and reconcile
// those keys. With the View's owner index the cost follows the pod's
// ReplicaSet (10 pods here), not the cluster; compare pods=1000 and
// pods=10000.
func BenchmarkReconcileOnePodChange(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("pods=%d", n), func(b *testing.B) {
			st := store.New(store.DefaultConfig())
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			apply := func(obj api.Object) api.Object {
				api.SetDefaults(obj)
				api.PrepareCreate(obj, now, api.NewUID())
				res := st.Apply([]store.Op{{Type: store.OpCreate, Object: obj}})
				if res[0].Err != nil {
					b.Fatal(res[0].Err)
				}
				return res[0].Object
			}
			var last api.Object
			replicas := int32(10)
			for r := 0; r < n/10; r++ {
				name := fmt.Sprintf("rs-%d", r)
				labels := map[string]string{"app": name}
				rs := apply(&api.ReplicaSet{
					ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name},
					Spec: api.ReplicaSetSpec{Replicas: &replicas, Selector: &api.LabelSelector{MatchLabels: labels},
						Template: api.PodTemplateSpec{ObjectMeta: api.ObjectMeta{Labels: labels},
							Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "i"}}}}},
				})
				yes := true
				for p := 0; p < 10; p++ {
					last = apply(&api.Pod{
						ObjectMeta: api.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("%s-%d", name, p), Labels: labels,
							OwnerReferences: []api.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name, UID: rs.GetObjectMeta().UID, Controller: &yes}}},
						Spec: api.PodSpec{NodeName: "n1", Containers: []api.Container{{Name: "c", Image: "i"}}},
					})
				}
			}
			v := NewView(st)
			v.Rebuild()
			var ctrls []Controller
			for _, c := range Set(DefaultClusterConfig()) {
				if c.Name == "replicaset" || c.Name == "deployment" {
					ctrls = append(ctrls, c)
				}
			}
			ev := store.Event{Type: store.Modified, Object: last}
			// Settle the ReplicaSet's status first, as the loop would have.
			for _, c := range ctrls {
				for _, k := range c.Keys(ev, v) {
					if _, err := applyPlan(context.Background(), &testBackend{st: st}, c.Reconcile(k, v, now), now, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ResetTimer()
			for b.Loop() {
				v.Observe(ev)
				for _, c := range ctrls {
					for _, k := range c.Keys(ev, v) {
						if p := c.Reconcile(k, v, now); !p.Empty() {
							b.Fatalf("%s planned changes for a settled ReplicaSet: %d %d %d %d\n%s", c.Name, len(p.Create), len(p.Update), len(p.UpdateStatus), len(p.Delete), p)
						}
					}
				}
			}
		})
	}
}
