package controllers

import (
	"strings"
	"time"

	"github.com/shoal-dev/shoal/agent/internal/metrics"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
	"github.com/shoal-dev/shoal/placement"
)

// ClusterConfig holds the address ranges the leader hands out.
type ClusterConfig struct {
	// ClusterCIDR is split into one PodCIDR per node.
	ClusterCIDR string
	// NodeMaskBits is the size of a node's pod subnet (24: a /24).
	NodeMaskBits int
	// ServiceCIDR is where ClusterIPs come from.
	ServiceCIDR string
	// Scheduler tunes placement.
	Scheduler placement.SchedulerConfig
	// NodeLossGrace is how long a node gossip declared dead stays so
	// before its replaceable pods are moved; NodeUnknownGrace is the same
	// for a node NotReady on weaker evidence (it left, gossip does not
	// know it). See placement.NodeLossInput. Zero means the defaults.
	NodeLossGrace    time.Duration
	NodeUnknownGrace time.Duration
	// Metrics, if set, records the scheduler's passes (the agent sets
	// it; it is not part of a user's configuration).
	Metrics *metrics.Scheduler
}

// DefaultClusterConfig returns the ranges of DESIGN.md.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{
		ClusterCIDR:      "10.244.0.0/16",
		NodeMaskBits:     24,
		ServiceCIDR:      "10.96.0.0/16",
		Scheduler:        placement.DefaultSchedulerConfig(),
		NodeLossGrace:    placement.DefaultNodeLossGrace,
		NodeUnknownGrace: placement.DefaultNodeUnknownGrace,
	}
}

// The controllers' keys are "namespace/name" for per-object controllers and
// allKey for controllers that decide over a whole kind at once.
const allKey = "*"

func nsName(ns, name string) string { return ns + "/" + name }

func splitKey(k string) (string, string) {
	ns, name, _ := strings.Cut(k, "/")
	return ns, name
}

func keysOf(objs []api.Object) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		m := o.GetObjectMeta()
		out = append(out, nsName(m.Namespace, m.Name))
	}
	return out
}

// ownerKey is the key of ev's object's controller when it is of kind.
func ownerKey(ev store.Event, kind string) []string {
	m := ev.Object.GetObjectMeta()
	if ref := api.ControllerOf(m); ref != nil && ref.Kind == kind {
		return []string{nsName(m.Namespace, ref.Name)}
	}
	return nil
}

func kindIs(ev store.Event, kinds ...string) bool {
	k := api.KindOf(ev.Object)
	for _, want := range kinds {
		if k == want {
			return true
		}
	}
	return false
}

func pods(objs []api.Object) []*api.Pod {
	out := make([]*api.Pod, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*api.Pod))
	}
	return out
}

func nodes(objs []api.Object) []*api.Node {
	out := make([]*api.Node, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*api.Node))
	}
	return out
}

func all(kind string) func(v *View) []string {
	return func(v *View) []string { return keysOf(v.List(kind, "")) }
}

func always(*View) []string { return []string{allKey} }

// Set returns the leader's control loops, in the order their plans are
// applied within a batch.
func Set(cfg ClusterConfig) []Controller {
	return []Controller{
		PodCIDR(cfg),
		ClusterIP(cfg),
		Deployment(),
		ReplicaSet(),
		StatefulSet(),
		DaemonSet(),
		Scheduler(cfg),
		Endpoints(),
		GarbageCollector(),
		NodeLoss(cfg),
	}
}

// PodCIDR gives each new node a pod subnet from the cluster range.
func PodCIDR(cfg ClusterConfig) Controller {
	return Controller{
		Name: "podcidr",
		Keys: func(ev store.Event, _ *View) []string {
			if kindIs(ev, "Node") && ev.Type == store.Added {
				return []string{allKey}
			}
			return nil
		},
		All: always,
		Reconcile: func(_ string, v *View, _ time.Time) placement.Plan {
			return placement.AllocatePodCIDRs(cfg.ClusterCIDR, cfg.NodeMaskBits, nodes(v.List("Node", "")))
		},
	}
}

// ClusterIP gives each Service a ClusterIP (and node ports) from the service range.
func ClusterIP(cfg ClusterConfig) Controller {
	return Controller{
		Name: "clusterip",
		Keys: func(ev store.Event, _ *View) []string {
			if kindIs(ev, "Service") && ev.Type != store.Deleted {
				return []string{allKey}
			}
			return nil
		},
		All: always,
		Reconcile: func(_ string, v *View, _ time.Time) placement.Plan {
			objs := v.List("Service", "")
			svcs := make([]*api.Service, 0, len(objs))
			for _, o := range objs {
				svcs = append(svcs, o.(*api.Service))
			}
			return placement.AllocateClusterIPs(cfg.ServiceCIDR, svcs)
		},
	}
}

// Deployment rolls Deployments between their ReplicaSets.
func Deployment() Controller {
	return Controller{
		Name: "deployment",
		Keys: func(ev store.Event, v *View) []string {
			switch api.KindOf(ev.Object) {
			case "Deployment":
				m := ev.Object.GetObjectMeta()
				return []string{nsName(m.Namespace, m.Name)}
			case "ReplicaSet":
				return ownerKey(ev, "Deployment")
			case "Pod":
				// A pod's readiness moves its Deployment's rollout.
				m := ev.Object.GetObjectMeta()
				if ref := api.ControllerOf(m); ref != nil && ref.Kind == "ReplicaSet" {
					if rs := v.Get("ReplicaSet", m.Namespace, ref.Name); rs != nil {
						if dref := api.ControllerOf(rs.GetObjectMeta()); dref != nil && dref.Kind == "Deployment" {
							return []string{nsName(m.Namespace, dref.Name)}
						}
					}
				}
			}
			return nil
		},
		All: all("Deployment"),
		Reconcile: func(k string, v *View, now time.Time) placement.Plan {
			ns, name := splitKey(k)
			o := v.Get("Deployment", ns, name)
			if o == nil {
				return placement.Plan{}
			}
			d := o.(*api.Deployment)
			rsObjs := append(v.Owned(d.UID, "ReplicaSet"), v.Orphans(ns, "ReplicaSet")...)
			var rss []*api.ReplicaSet
			var ps []*api.Pod
			for _, r := range rsObjs {
				rs := r.(*api.ReplicaSet)
				rss = append(rss, rs)
				ps = append(ps, pods(v.Owned(rs.UID, "Pod"))...)
			}
			return placement.ReconcileDeployment(placement.DeploymentInput{Deployment: d, ReplicaSets: rss, Pods: ps, Now: now})
		},
	}
}

// ReplicaSet keeps each ReplicaSet at its replica count.
func ReplicaSet() Controller {
	return Controller{
		Name: "replicaset",
		Keys: func(ev store.Event, _ *View) []string {
			switch api.KindOf(ev.Object) {
			case "ReplicaSet":
				m := ev.Object.GetObjectMeta()
				return []string{nsName(m.Namespace, m.Name)}
			case "Pod":
				return ownerKey(ev, "ReplicaSet")
			}
			return nil
		},
		All: all("ReplicaSet"),
		Reconcile: func(k string, v *View, now time.Time) placement.Plan {
			ns, name := splitKey(k)
			o := v.Get("ReplicaSet", ns, name)
			if o == nil {
				return placement.Plan{}
			}
			rs := o.(*api.ReplicaSet)
			ps := pods(append(v.Owned(rs.UID, "Pod"), v.Orphans(ns, "Pod")...))
			return placement.ReconcileReplicaSet(placement.ReplicaSetInput{ReplicaSet: rs, Pods: ps, Now: now})
		},
	}
}

// StatefulSet creates and removes StatefulSet pods in order.
func StatefulSet() Controller {
	return Controller{
		Name: "statefulset",
		Keys: func(ev store.Event, _ *View) []string {
			switch api.KindOf(ev.Object) {
			case "StatefulSet":
				m := ev.Object.GetObjectMeta()
				return []string{nsName(m.Namespace, m.Name)}
			case "Pod":
				return ownerKey(ev, "StatefulSet")
			}
			return nil
		},
		All: all("StatefulSet"),
		Reconcile: func(k string, v *View, now time.Time) placement.Plan {
			ns, name := splitKey(k)
			o := v.Get("StatefulSet", ns, name)
			if o == nil {
				return placement.Plan{}
			}
			s := o.(*api.StatefulSet)
			return placement.ReconcileStatefulSet(placement.StatefulSetInput{
				StatefulSet: s, Pods: pods(v.Owned(s.UID, "Pod")), Nodes: nodes(v.List("Node", "")), Now: now})
		},
	}
}

// DaemonSet keeps one pod of each DaemonSet on every eligible node.
func DaemonSet() Controller {
	return Controller{
		Name: "daemonset",
		Keys: func(ev store.Event, v *View) []string {
			switch api.KindOf(ev.Object) {
			case "DaemonSet":
				m := ev.Object.GetObjectMeta()
				return []string{nsName(m.Namespace, m.Name)}
			case "Pod":
				return ownerKey(ev, "DaemonSet")
			case "Node":
				return keysOf(v.List("DaemonSet", ""))
			}
			return nil
		},
		All: all("DaemonSet"),
		Reconcile: func(k string, v *View, now time.Time) placement.Plan {
			ns, name := splitKey(k)
			o := v.Get("DaemonSet", ns, name)
			if o == nil {
				return placement.Plan{}
			}
			ds := o.(*api.DaemonSet)
			return placement.ReconcileDaemonSet(placement.DaemonSetInput{
				DaemonSet: ds, Nodes: nodes(v.List("Node", "")), Pods: pods(v.Owned(ds.UID, "Pod")), Now: now})
		},
	}
}

// Scheduler binds pending pods to nodes.
func Scheduler(cfg ClusterConfig) Controller {
	return Controller{
		Name: "scheduler",
		Keys: func(ev store.Event, _ *View) []string {
			switch api.KindOf(ev.Object) {
			case "Pod":
				if ev.Type != store.Deleted && ev.Object.(*api.Pod).Spec.NodeName == "" {
					return []string{allKey}
				}
			case "Node":
				return []string{allKey}
			}
			return nil
		},
		All: always,
		Reconcile: func(_ string, v *View, now time.Time) placement.Plan {
			pending, _, _ := v.Store().List("Pod", "", store.Selector{Fields: api.FieldSelector{{Field: "spec.nodeName", Operator: "=", Value: ""}}})
			if len(pending) == 0 {
				cfg.Metrics.Idle()
				return placement.Plan{}
			}
			start := time.Now() // measured for metrics only; decisions take now
			plan := placement.SchedulePending(cfg.Scheduler, nodes(v.List("Node", "")), pods(v.List("Pod", "")), now)
			cfg.Metrics.Pass(time.Since(start), len(plan.Update), schedulable(pending)-len(plan.Update))
			return plan
		},
		Amend: func(plan *placement.Plan, v *View, _ time.Time) []string {
			return bindCreated(cfg, plan, v)
		},
	}
}

// bindCreated binds the pods a plan creates (a ReplicaSet's new replicas)
// at their creation: each is named and defaulted here as planOps does,
// and placed among the stored pods as the plan leaves them (pods it binds
// count on their nodes).
func bindCreated(cfg ClusterConfig, plan *placement.Plan, v *View) []string {
	var created []*api.Pod
	for _, o := range plan.Create {
		p, ok := o.(*api.Pod)
		if !ok || p.Spec.NodeName != "" {
			continue
		}
		if nameForCreate(p) != nil {
			continue // planOps refuses it
		}
		api.SetDefaults(p)
		created = append(created, p)
	}
	if len(created) == 0 {
		return nil
	}
	updated := map[store.Key]*api.Pod{}
	for _, o := range plan.Update {
		if p, ok := o.(*api.Pod); ok {
			updated[store.KeyOf(p)] = p
		}
	}
	var bound []*api.Pod
	for _, p := range pods(v.List("Pod", "")) {
		if u := updated[store.KeyOf(p)]; u != nil {
			p = u
		}
		if p.Spec.NodeName != "" {
			bound = append(bound, p)
		}
	}
	events := placement.BindCreated(cfg.Scheduler, nodes(v.List("Node", "")), bound, created)
	cfg.Metrics.BoundAtCreation(len(events))
	return events
}

// schedulable counts the unbound pods the scheduler tries to place (not
// being deleted, not finished); SchedulePending binds each with an Update.
func schedulable(unbound []api.Object) int {
	n := 0
	for _, p := range pods(unbound) {
		if p.DeletionTimestamp == nil && p.Status.Phase != api.PodSucceeded && p.Status.Phase != api.PodFailed {
			n++
		}
	}
	return n
}

// Endpoints keeps each Service's Endpoints equal to the ready pods it selects.
func Endpoints() Controller {
	return Controller{
		Name: "endpoints",
		Keys: func(ev store.Event, v *View) []string {
			m := ev.Object.GetObjectMeta()
			switch api.KindOf(ev.Object) {
			case "Service", "Endpoints":
				return []string{nsName(m.Namespace, m.Name)}
			case "Pod":
				// The Services that select the pod now, and those that
				// selected it before a relabelling.
				var prevLabels map[string]string
				if ev.Prev != nil {
					prevLabels = ev.Prev.GetObjectMeta().Labels
				}
				return servicesOf(v, m.Namespace, m.Labels, prevLabels)
			case "Node":
				// A node's readiness moves its pods in or out of the
				// ready addresses: the Services of the pods there.
				if !readinessChanged(ev) {
					return nil
				}
				objs, _, _ := v.Store().List("Pod", "", store.Selector{Fields: api.FieldSelector{{Field: "spec.nodeName", Operator: "=", Value: m.Name}}})
				seen := map[string]bool{}
				var out []string
				for _, o := range objs {
					pm := o.GetObjectMeta()
					for _, k := range servicesOf(v, pm.Namespace, pm.Labels, nil) {
						if !seen[k] {
							seen[k] = true
							out = append(out, k)
						}
					}
				}
				return out
			}
			return nil
		},
		All: all("Service"),
		Reconcile: func(k string, v *View, _ time.Time) placement.Plan {
			ns, name := splitKey(k)
			var in placement.EndpointsInput
			if o := v.Get("Service", ns, name); o != nil {
				svc := o.(*api.Service)
				in.Services = []*api.Service{svc}
				if len(svc.Spec.Selector) > 0 {
					ps, _, _ := v.Store().List("Pod", ns, store.Selector{Labels: api.SelectorFromSet(svc.Spec.Selector)})
					in.Pods = pods(ps)
					in.Nodes = nodesOf(v, in.Pods)
				}
			}
			if o := v.Get("Endpoints", ns, name); o != nil {
				in.Endpoints = []*api.Endpoints{o.(*api.Endpoints)}
			}
			if len(in.Services) == 0 && len(in.Endpoints) == 0 {
				return placement.Plan{}
			}
			return placement.ReconcileEndpoints(in)
		},
	}
}

// servicesOf are the keys of the Services of ns whose selector matches
// labels or prev (nil: none).
func servicesOf(v *View, ns string, labels, prev map[string]string) []string {
	var out []string
	for _, o := range v.List("Service", ns) {
		sel := o.(*api.Service).Spec.Selector
		if len(sel) == 0 {
			continue
		}
		s := api.SelectorFromSet(sel)
		if s.Matches(labels) || (prev != nil && s.Matches(prev)) {
			out = append(out, nsName(ns, o.GetObjectMeta().Name))
		}
	}
	return out
}

// readinessChanged reports whether a Node event changes whether the node
// counts as NotReady (placement.NodeNotReady).
func readinessChanged(ev store.Event) bool {
	cur, ok := ev.Object.(*api.Node)
	if !ok {
		return false
	}
	if ev.Type == store.Deleted || ev.Prev == nil {
		return true
	}
	prev, ok := ev.Prev.(*api.Node)
	return !ok || placement.NodeNotReady(prev) != placement.NodeNotReady(cur)
}

// nodesOf are the Node objects the pods are bound to.
func nodesOf(v *View, ps []*api.Pod) []*api.Node {
	seen := map[string]bool{}
	var out []*api.Node
	for _, p := range ps {
		name := p.Spec.NodeName
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		if o := v.Get("Node", "", name); o != nil {
			out = append(out, o.(*api.Node))
		}
	}
	return out
}

// GarbageCollector deletes objects whose owners are gone.
func GarbageCollector() Controller {
	return Controller{
		Name: "gc",
		Keys: func(ev store.Event, _ *View) []string {
			if ev.Type == store.Deleted && kindIs(ev, placement.DefaultOwnerKinds...) {
				return []string{allKey}
			}
			return nil
		},
		All: always,
		Reconcile: func(_ string, v *View, _ time.Time) placement.Plan {
			var objs []api.Object
			for _, k := range append(append([]string(nil), placement.DefaultOwnerKinds...), "Pod") {
				objs = append(objs, v.List(k, "")...)
			}
			return placement.CollectGarbage(placement.GCInput{Objects: objs})
		},
	}
}

// NodeLoss replaces the pods of nodes that stayed NotReady past the grace.
func NodeLoss(cfg ClusterConfig) Controller {
	return Controller{
		Name: "nodeloss",
		Keys: func(ev store.Event, _ *View) []string {
			if kindIs(ev, "Node") {
				return []string{allKey}
			}
			return nil
		},
		All: always,
		Reconcile: func(_ string, v *View, now time.Time) placement.Plan {
			ns := nodes(v.List("Node", ""))
			// Only the pods of nodes that are not Ready can be lost; read
			// them through the node index instead of every pod.
			var ps []*api.Pod
			for _, n := range ns {
				if c := api.FindCondition(n.Status.Conditions, api.NodeReady); c != nil && c.Status == api.ConditionTrue {
					continue
				}
				objs, _, _ := v.Store().List("Pod", "", store.Selector{Fields: api.FieldSelector{{Field: "spec.nodeName", Operator: "=", Value: n.Name}}})
				ps = append(ps, pods(objs)...)
			}
			if len(ps) == 0 {
				return placement.Plan{}
			}
			var sts []*api.StatefulSet
			for _, o := range v.List("StatefulSet", "") {
				sts = append(sts, o.(*api.StatefulSet))
			}
			return placement.ReconcileNodeLoss(placement.NodeLossInput{Nodes: ns, Pods: ps, StatefulSets: sts, Now: now,
				Grace: cfg.NodeLossGrace, UnknownGrace: cfg.NodeUnknownGrace})
		},
	}
}
