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

// VolumeRoot is where a node keeps StatefulSet local volumes: each claim
// of each ordinal is the hostPath <VolumeRoot>/<namespace>/<claim>-<set>-<ordinal>.
const VolumeRoot = "/var/lib/shoal/volumes"

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
// Each volumeClaimTemplate becomes a hostPath volume under VolumeRoot, local
// to the node where the ordinal first ran. The binding is kept in the set's
// annotation shoal.dev/volume-nodes (so it outlives the pod) and on the pod
// as shoal.dev/volume-node; a re-created pod gets spec.nodeName set to it.
// Pods get hostname <pod name> and subdomain spec.serviceName. A set whose
// metadata changes (a new binding) gets that Update alone, its status on
// the next reconcile.
func ReconcileStatefulSet(in StatefulSetInput) Plan {
	var plan Plan
	s := in.StatefulSet
	if s == nil || s.DeletionTimestamp != nil {
		return plan
	}
	say := func(format string, a ...any) {
		plan.Events = append(plan.Events, fmt.Sprintf("StatefulSet %s/%s: ", s.Namespace, s.Name)+fmt.Sprintf(format, a...))
	}
	want := int(int32Or(s.Spec.Replicas, 1))
	revision := TemplateHash(&s.Spec.Template, 0)
	parallel := s.Spec.PodManagementPolicy == api.ParallelPodManagement
	bindings := volumeBindings(s)
	newBindings := maps.Clone(bindings)
	hasVolumes := len(s.Spec.VolumeClaimTemplates) > 0

	pods := map[int]*api.Pod{}
	for _, p := range in.Pods {
		if p.Namespace != s.Namespace || controllerUID(&p.ObjectMeta) != s.UID {
			continue
		}
		i, ok := statefulOrdinal(s.Name, p.Name)
		if !ok {
			if p.DeletionTimestamp == nil {
				say("deleting pod %s: not named <set>-<ordinal>", p.Name)
				plan.Delete = append(plan.Delete, RefOf(p))
			}
			continue
		}
		pods[i] = p
		if hasVolumes && p.Spec.NodeName != "" && podIsActive(p) {
			if newBindings[strconv.Itoa(i)] != p.Spec.NodeName {
				newBindings[strconv.Itoa(i)] = p.Spec.NodeName
				say("volumes of ordinal %d are on node %s", i, p.Spec.NodeName)
			}
			if p.Annotations[AnnotationVolumeNode] != p.Spec.NodeName {
				c := p.DeepCopyObject().(*api.Pod)
				if c.Annotations == nil {
					c.Annotations = map[string]string{}
				}
				c.Annotations[AnnotationVolumeNode] = p.Spec.NodeName
				plan.Update = append(plan.Update, c)
			}
		}
	}

	// allow-move: forget bindings to lost nodes for ordinals with no pod.
	if in.Nodes != nil && s.Annotations[AnnotationAllowMove] == "true" {
		ready := map[string]bool{}
		for _, n := range in.Nodes {
			c := api.FindCondition(n.Status.Conditions, api.NodeReady)
			ready[n.Name] = c != nil && c.Status == api.ConditionTrue
		}
		for _, k := range sortedKeys(newBindings) {
			i, _ := strconv.Atoi(k)
			if pods[i] == nil && !ready[newBindings[k]] {
				say("ordinal %d: node %s is lost and moves are allowed: its volumes start afresh elsewhere", i, newBindings[k])
				delete(newBindings, k)
			}
		}
	}

	running := func(p *api.Pod) bool {
		return p.DeletionTimestamp == nil && p.Status.Phase == api.PodRunning && podIsReady(p)
	}
	create := func(i int) {
		p := statefulPod(s, i, revision, newBindings[strconv.Itoa(i)])
		plan.Create = append(plan.Create, p)
		where := ""
		if p.Spec.NodeName != "" {
			where = " on node " + p.Spec.NodeName + " (its volumes)"
		}
		say("creating pod %s%s", p.Name, where)
	}

	healthy := true // every ordinal below want exists, Running and Ready
	for i := range want {
		p := pods[i]
		switch {
		case p == nil:
			healthy = false
			create(i)
		case p.DeletionTimestamp != nil:
			healthy = false
		case p.Status.Phase == api.PodFailed || p.Status.Phase == api.PodSucceeded:
			healthy = false
			say("deleting %s pod %s to re-create it", strings.ToLower(p.Status.Phase), p.Name)
			plan.Delete = append(plan.Delete, RefOf(p))
		case !running(p):
			healthy = false
		}
		if !healthy && !parallel {
			break
		}
	}

	var condemned []int
	terminating := false
	for i, p := range pods {
		if p.DeletionTimestamp != nil {
			terminating = true
		}
		if i >= want && p.DeletionTimestamp == nil {
			condemned = append(condemned, i)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(condemned)))
	// A pod being annotated in this plan is not also deleted in it (the
	// delete's resourceVersion would fail): deletions wait a reconcile.
	annotating := len(plan.Update) > 0
	switch {
	case annotating:
	case parallel:
		for _, i := range condemned {
			say("scaling down: deleting pod %s", pods[i].Name)
			plan.Delete = append(plan.Delete, RefOf(pods[i]))
		}
	case len(condemned) > 0 && healthy && !terminating:
		p := pods[condemned[0]]
		say("scaling down: deleting pod %s", p.Name)
		plan.Delete = append(plan.Delete, RefOf(p))
	}

	// Rolling update, one pod at a time, when all is well.
	if s.Spec.UpdateStrategy.Type != api.OnDeleteStrategy && healthy && !terminating && len(condemned) == 0 && !annotating {
		partition := 0
		if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil {
			partition = int(int32Or(ru.Partition, 0))
		}
		for i := want - 1; i >= partition; i-- {
			if p := pods[i]; p != nil && p.Labels[LabelControllerRevision] != revision {
				say("updating pod %s to revision %s", p.Name, revision)
				plan.Delete = append(plan.Delete, RefOf(p))
				break
			}
		}
	}

	if !maps.Equal(bindings, newBindings) {
		c := s.DeepCopyObject().(*api.StatefulSet)
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		if len(newBindings) == 0 {
			delete(c.Annotations, AnnotationVolumeNodes)
		} else {
			b, _ := json.Marshal(newBindings)
			c.Annotations[AnnotationVolumeNodes] = string(b)
		}
		plan.Update = append(plan.Update, c)
		return plan
	}

	st := statefulSetStatus(s, pods, revision, want, in.Now)
	if !reflect.DeepEqual(st, s.Status) {
		c := s.DeepCopyObject().(*api.StatefulSet)
		c.Status = st
		plan.UpdateStatus = append(plan.UpdateStatus, c)
	}
	return plan
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
		v := api.Volume{Name: c.Name, HostPath: &api.HostPathVolumeSource{
			Path: fmt.Sprintf("%s/%s/%s-%s-%d", VolumeRoot, s.Namespace, c.Name, s.Name, i),
			Type: "DirectoryOrCreate",
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
