package placement

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// StatefulSetInput is everything ReconcileStatefulSet reads.
type StatefulSetInput struct {
	StatefulSet *api.StatefulSet
	// Pods of the set's namespace; those it controls are used.
	Pods []*api.Pod
	// Nodes, when not nil, lets a set annotated shoal.dev/allow-move
	// forget the volume binding of a missing ordinal whose node is gone or
	// not Ready, so that the pod starts elsewhere (with fresh volumes).
	Nodes []*api.Node
	Now   time.Time
}

// ReconcileStatefulSet keeps pods <name>-0 … <name>-(replicas-1).
//
// OrderedReady (the default) creates ordinal i only when 0..i-1 are Running
// and Ready, one per reconcile; scales down from the highest ordinal, one at
// a time, and only while every remaining pod is Running and Ready. Parallel
// creates and deletes all at once. A Failed pod is deleted, to be re-created
// under its name. RollingUpdate replaces pods whose revision
// (controller-revision-hash) is not the template's, highest ordinal first,
// one at a time, only when all pods are Running and Ready, and not below
// the partition; OnDelete never replaces.
//
// Each volumeClaimTemplate becomes a persistentVolumeClaim volume named
// <claim>-<set>-<ordinal>, which the node keeps in its own data directory
// (node-local; see dataplane/volume), local to the node where the ordinal
// first ran. (Not a hostPath: pods may not mount Shoal's data directory.) The binding is kept in the set's
// annotation shoal.dev/volume-nodes (so it outlives the pod) and on the pod
// as shoal.dev/volume-node; a re-created pod gets spec.nodeName set to it.
// Pods get hostname <pod name> and subdomain spec.serviceName. A set whose
// metadata changes (a new binding) gets that Update alone, its status on
// the next reconcile.
func ReconcileStatefulSet(in StatefulSetInput) Plan {
	s := in.StatefulSet
	if s == nil || s.DeletionTimestamp != nil {
		return Plan{}
	}
	bindings := volumeBindings(s)
	r := &statefulSetReconcile{
		in:          in,
		s:           s,
		want:        int(int32Or(s.Spec.Replicas, 1)),
		revision:    TemplateHash(&s.Spec.Template, 0),
		parallel:    s.Spec.PodManagementPolicy == api.ParallelPodManagement,
		newBindings: maps.Clone(bindings),
		pods:        map[int]*api.Pod{},
	}
	r.gatherPods()
	r.releaseLostBindings()
	r.createMissing()
	r.scaleDown()
	r.rollingUpdate()

	if !maps.Equal(bindings, r.newBindings) {
		c := s.DeepCopyObject().(*api.StatefulSet)
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		if len(r.newBindings) == 0 {
			delete(c.Annotations, AnnotationVolumeNodes)
		} else {
			b, _ := json.Marshal(r.newBindings)
			c.Annotations[AnnotationVolumeNodes] = string(b)
		}
		r.plan.Update = append(r.plan.Update, c)
		return r.plan
	}

	st := statefulSetStatus(s, r.pods, r.revision, r.want, in.Now)
	if !reflect.DeepEqual(st, s.Status) {
		c := s.DeepCopyObject().(*api.StatefulSet)
		c.Status = st
		r.plan.UpdateStatus = append(r.plan.UpdateStatus, c)
	}
	return r.plan
}

// statefulSetReconcile is the working state of one ReconcileStatefulSet:
// each step below reads what the steps before it found and adds to the
// plan.
type statefulSetReconcile struct {
	in       StatefulSetInput
	s        *api.StatefulSet
	want     int    // replicas
	revision string // the template's controller-revision-hash
	parallel bool   // podManagementPolicy Parallel

	newBindings map[string]string // ordinal → node of its volumes, as the plan leaves it
	pods        map[int]*api.Pod  // the set's pods by ordinal

	healthy     bool  // every ordinal below want exists, Running and Ready
	terminating bool  // some pod of the set is being deleted
	condemned   []int // ordinals at or above want, highest first
	plan        Plan
}

func (r *statefulSetReconcile) say(format string, a ...any) {
	r.plan.Events = append(r.plan.Events, fmt.Sprintf("StatefulSet %s/%s: ", r.s.Namespace, r.s.Name)+fmt.Sprintf(format, a...))
}

// gatherPods indexes the set's pods by ordinal, deletes those not named
// <set>-<ordinal>, and records where active pods keep their volumes: in
// the bindings, and on the pod's own annotation.
func (r *statefulSetReconcile) gatherPods() {
	s := r.s
	hasVolumes := len(s.Spec.VolumeClaimTemplates) > 0
	for _, p := range r.in.Pods {
		if p.Namespace != s.Namespace || controllerUID(&p.ObjectMeta) != s.UID {
			continue
		}
		i, ok := statefulOrdinal(s.Name, p.Name)
		if !ok {
			if p.DeletionTimestamp == nil {
				r.say("deleting pod %s: not named <set>-<ordinal>", p.Name)
				r.plan.Delete = append(r.plan.Delete, RefOf(p))
			}
			continue
		}
		r.pods[i] = p
		if hasVolumes && p.Spec.NodeName != "" && podIsActive(p) {
			if r.newBindings[strconv.Itoa(i)] != p.Spec.NodeName {
				r.newBindings[strconv.Itoa(i)] = p.Spec.NodeName
				r.say("volumes of ordinal %d are on node %s", i, p.Spec.NodeName)
			}
			if p.Annotations[AnnotationVolumeNode] != p.Spec.NodeName {
				c := p.DeepCopyObject().(*api.Pod)
				if c.Annotations == nil {
					c.Annotations = map[string]string{}
				}
				c.Annotations[AnnotationVolumeNode] = p.Spec.NodeName
				r.plan.Update = append(r.plan.Update, c)
			}
		}
	}
}

// releaseLostBindings applies allow-move: it forgets the bindings to lost
// nodes of ordinals with no pod.
func (r *statefulSetReconcile) releaseLostBindings() {
	if r.in.Nodes == nil || r.s.Annotations[AnnotationAllowMove] != "true" {
		return
	}
	ready := map[string]bool{}
	for _, n := range r.in.Nodes {
		c := api.FindCondition(n.Status.Conditions, api.NodeReady)
		ready[n.Name] = c != nil && c.Status == api.ConditionTrue
	}
	for _, k := range sortedKeys(r.newBindings) {
		i, _ := strconv.Atoi(k)
		if r.pods[i] == nil && !ready[r.newBindings[k]] {
			r.say("ordinal %d: node %s is lost and moves are allowed: its volumes start afresh elsewhere", i, r.newBindings[k])
			delete(r.newBindings, k)
		}
	}
}

// createMissing walks the ordinals below want: it creates missing pods and
// deletes finished ones (to be re-created under their name). OrderedReady
// stops at the first ordinal that is not Running and Ready.
func (r *statefulSetReconcile) createMissing() {
	r.healthy = true
	for i := range r.want {
		p := r.pods[i]
		switch {
		case p == nil:
			r.healthy = false
			r.create(i)
		case p.DeletionTimestamp != nil:
			r.healthy = false
		case p.Status.Phase == api.PodFailed || p.Status.Phase == api.PodSucceeded:
			r.healthy = false
			r.say("deleting %s pod %s to re-create it", strings.ToLower(p.Status.Phase), p.Name)
			r.plan.Delete = append(r.plan.Delete, RefOf(p))
		case !statefulRunning(p):
			r.healthy = false
		}
		if !r.healthy && !r.parallel {
			break
		}
	}
}

// statefulRunning: p is not being deleted, Running and Ready.
func statefulRunning(p *api.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase == api.PodRunning && podIsReady(p)
}

func (r *statefulSetReconcile) create(i int) {
	p := statefulPod(r.s, i, r.revision, r.newBindings[strconv.Itoa(i)])
	r.plan.Create = append(r.plan.Create, p)
	where := ""
	if p.Spec.NodeName != "" {
		where = " on node " + p.Spec.NodeName + " (its volumes)"
	}
	r.say("creating pod %s%s", p.Name, where)
}

// scaleDown deletes the pods at or above want: all at once when Parallel,
// else the highest one, only while the rest are healthy and none is
// terminating.
func (r *statefulSetReconcile) scaleDown() {
	for i, p := range r.pods {
		if p.DeletionTimestamp != nil {
			r.terminating = true
		}
		if i >= r.want && p.DeletionTimestamp == nil {
			r.condemned = append(r.condemned, i)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(r.condemned)))
	switch {
	case r.annotating():
	case r.parallel:
		for _, i := range r.condemned {
			r.say("scaling down: deleting pod %s", r.pods[i].Name)
			r.plan.Delete = append(r.plan.Delete, RefOf(r.pods[i]))
		}
	case len(r.condemned) > 0 && r.healthy && !r.terminating:
		p := r.pods[r.condemned[0]]
		r.say("scaling down: deleting pod %s", p.Name)
		r.plan.Delete = append(r.plan.Delete, RefOf(p))
	}
}

// annotating reports whether the plan annotates a pod. A pod annotated in
// this plan is not also deleted in it (the delete's resourceVersion would
// fail): deletions wait a reconcile.
func (r *statefulSetReconcile) annotating() bool {
	return len(r.plan.Update) > 0
}

// rollingUpdate replaces one pod of an old revision, the highest ordinal
// not below the partition, when all is well.
func (r *statefulSetReconcile) rollingUpdate() {
	s := r.s
	if s.Spec.UpdateStrategy.Type == api.OnDeleteStrategy || !r.healthy || r.terminating || len(r.condemned) > 0 || r.annotating() {
		return
	}
	partition := 0
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		partition = int(int32Or(ru.Partition, 0))
	}
	for i := r.want - 1; i >= partition; i-- {
		if p := r.pods[i]; p != nil && p.Labels[LabelControllerRevision] != r.revision {
			r.say("updating pod %s to revision %s", p.Name, r.revision)
			r.plan.Delete = append(r.plan.Delete, RefOf(p))
			break
		}
	}
}

// statefulOrdinal parses <set>-<ordinal>.
func statefulOrdinal(set, pod string) (int, bool) {
	rest, ok := strings.CutPrefix(pod, set+"-")
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}

// volumeBindings reads the set's ordinal → node map.
func volumeBindings(s *api.StatefulSet) map[string]string {
	m := map[string]string{}
	if v := s.Annotations[AnnotationVolumeNodes]; v != "" {
		_ = json.Unmarshal([]byte(v), &m) // a garbled annotation starts afresh
	}
	return m
}

// statefulPod builds ordinal i's pod.
func statefulPod(s *api.StatefulSet, i int, revision, node string) *api.Pod {
	name := s.Name + "-" + strconv.Itoa(i)
	p := podFromTemplate(&s.Spec.Template, s, name, map[string]string{
		LabelStatefulSetPodName: name,
		LabelControllerRevision: revision,
	})
	p.Spec.Hostname = name
	p.Spec.Subdomain = s.Spec.ServiceName
	for _, c := range s.Spec.VolumeClaimTemplates {
		v := api.Volume{Name: c.Name, PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{
			ClaimName: fmt.Sprintf("%s-%s-%d", c.Name, s.Name, i),
		}}
		replaced := false
		for j := range p.Spec.Volumes {
			if p.Spec.Volumes[j].Name == c.Name {
				p.Spec.Volumes[j], replaced = v, true
			}
		}
		if !replaced {
			p.Spec.Volumes = append(p.Spec.Volumes, v)
		}
	}
	if node != "" && len(s.Spec.VolumeClaimTemplates) > 0 {
		p.Spec.NodeName = node
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[AnnotationVolumeNode] = node
	}
	return p
}

func statefulSetStatus(s *api.StatefulSet, pods map[int]*api.Pod, revision string, want int, now time.Time) api.StatefulSetStatus {
	st := api.StatefulSetStatus{
		ObservedGeneration: s.Generation,
		Conditions:         s.Status.Conditions,
		UpdateRevision:     revision,
		CurrentRevision:    s.Status.CurrentRevision,
	}
	if st.CurrentRevision == "" {
		st.CurrentRevision = revision
	}
	for _, p := range pods {
		if !podIsActive(p) {
			continue
		}
		st.Replicas++
		if podIsReady(p) {
			st.ReadyReplicas++
		}
		if podIsAvailable(p, s.Spec.MinReadySeconds, now) {
			st.AvailableReplicas++
		}
		if p.Labels[LabelControllerRevision] == revision {
			st.UpdatedReplicas++
		}
	}
	if int(st.UpdatedReplicas) == want && int(st.ReadyReplicas) == want && int(st.Replicas) == want {
		st.CurrentRevision = revision
	}
	for _, p := range pods {
		if podIsActive(p) && p.Labels[LabelControllerRevision] == st.CurrentRevision {
			st.CurrentReplicas++
		}
	}
	return st
}
