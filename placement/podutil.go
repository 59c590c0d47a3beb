package placement

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"sort"
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Labels and annotations the controllers write, with the names Kubernetes
// gives them so that tools that know those keep working.
const (
	// LabelPodTemplateHash marks a Deployment's ReplicaSet and its pods with
	// the hash of the pod template they run.
	LabelPodTemplateHash = "pod-template-hash"
	// LabelControllerRevision marks DaemonSet and StatefulSet pods with the
	// revision (template hash) they were created from.
	LabelControllerRevision = "controller-revision-hash"
	// LabelStatefulSetPodName carries a StatefulSet pod's own name.
	LabelStatefulSetPodName = "statefulset.kubernetes.io/pod-name"
	// AnnotationRevision is a Deployment's and its ReplicaSets' revision.
	AnnotationRevision = "deployment.kubernetes.io/revision"
	// AnnotationVolumeNode records, on a StatefulSet pod, the node that
	// holds the pod's local volumes.
	AnnotationVolumeNode = "shoal.dev/volume-node"
	// AnnotationVolumeNodes records on a StatefulSet the node of each
	// ordinal's volumes as JSON {"0":"node-a",...}, so that the binding
	// outlives the pod.
	AnnotationVolumeNodes = "shoal.dev/volume-nodes"
	// AnnotationAllowMove on a StatefulSet ("true") lets node loss move its
	// pods to other nodes, giving up the local volumes.
	AnnotationAllowMove = "shoal.dev/allow-move"
)

// podIsActive: the pod is neither terminating nor finished.
func podIsActive(p *api.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != api.PodSucceeded && p.Status.Phase != api.PodFailed
}

// podReadyCondition returns the pod's Ready condition when it is True.
func podReadyCondition(p *api.Pod) *api.Condition {
	c := api.FindCondition(p.Status.Conditions, api.PodReady)
	if c == nil || c.Status != api.ConditionTrue {
		return nil
	}
	return c
}

// podIsReady: the pod's Ready condition is True.
func podIsReady(p *api.Pod) bool { return podReadyCondition(p) != nil }

// podIsAvailable: ready for at least minReady seconds at now. With
// minReady 0, ready is available.
func podIsAvailable(p *api.Pod, minReady int32, now time.Time) bool {
	c := podReadyCondition(p)
	if c == nil {
		return false
	}
	if minReady <= 0 {
		return true
	}
	if c.LastTransitionTime.IsZero() {
		return false
	}
	return !c.LastTransitionTime.Add(time.Duration(minReady) * time.Second).After(now)
}

// controllerUID returns the uid of the object's controller, or "".
func controllerUID(m *api.ObjectMeta) string {
	if r := api.ControllerOf(m); r != nil {
		return r.UID
	}
	return ""
}

// newControllerRef is the ownerReference a controller puts on what it makes.
func newControllerRef(owner api.Object) api.OwnerReference {
	k, _ := api.LookupKind(api.KindOf(owner))
	m := owner.GetObjectMeta()
	yes, yes2 := true, true
	return api.OwnerReference{
		APIVersion: k.APIVersion(), Kind: k.Kind, Name: m.Name, UID: m.UID,
		Controller: &yes, BlockOwnerDeletion: &yes2,
	}
}

// int32Or reads an optional count.
func int32Or(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// podFromTemplate builds a new pod from a template: labels and annotations
// copied (plus extra labels), the controller reference set, status empty.
func podFromTemplate(t *api.PodTemplateSpec, owner api.Object, name string, extraLabels map[string]string) *api.Pod {
	om := owner.GetObjectMeta()
	spec := (&api.Pod{Spec: t.Spec}).DeepCopyObject().(*api.Pod).Spec
	p := &api.Pod{
		ObjectMeta: api.ObjectMeta{
			Name:            name,
			Namespace:       om.Namespace,
			Labels:          maps.Clone(t.Labels),
			Annotations:     maps.Clone(t.Annotations),
			OwnerReferences: []api.OwnerReference{newControllerRef(owner)},
		},
		Spec: spec,
	}
	if len(extraLabels) > 0 {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		maps.Copy(p.Labels, extraLabels)
	}
	api.SetTypeMeta(p)
	return p
}

// suffixAlphabet avoids vowels and look-alikes, as Kubernetes' name
// generator does, so that a suffix never spells a word.
const suffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// HashSuffix is the default NameSuffix of the controllers: five characters
// derived from seed and i. A pure function cannot draw random names, so the
// suffix is a hash: a reconcile that is retried after a failed write
// proposes the same names again, which makes the retry idempotent.
func HashSuffix(seed string, i int) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", seed, i)
	v := h.Sum64()
	b := make([]byte, 5)
	for j := range b {
		b[j] = suffixAlphabet[v%uint64(len(suffixAlphabet))]
		v /= uint64(len(suffixAlphabet))
	}
	return string(b)
}

// podNamer hands out names prefix-<suffix> that are not among taken.
type podNamer struct {
	prefix string
	suffix func(i int) string
	taken  map[string]bool
	next   int
}

func newPodNamer(prefix, seed string, suffix func(int) string, pods []*api.Pod) *podNamer {
	if suffix == nil {
		suffix = func(i int) string { return HashSuffix(seed, i) }
	}
	taken := make(map[string]bool, len(pods))
	for _, p := range pods {
		taken[p.Name] = true
	}
	return &podNamer{prefix: prefix, suffix: suffix, taken: taken}
}

func (n *podNamer) name() string {
	for {
		s := n.prefix + "-" + n.suffix(n.next)
		n.next++
		if !n.taken[s] {
			n.taken[s] = true
			return s
		}
		if n.next > 1<<20 { // a NameSuffix that keeps repeating itself
			s = n.prefix + "-" + strconv.Itoa(n.next)
			n.taken[s] = true
			return s
		}
	}
}

// TemplateHash is a stable hash of a pod template, ignoring the
// pod-template-hash label itself (so a ReplicaSet's template hashes the same
// as the Deployment's). collisionCount, when non-zero, is mixed in, as
// Kubernetes does to step around a name clash.
func TemplateHash(t *api.PodTemplateSpec, collisionCount int32) string {
	c := *t
	if _, ok := c.Labels[LabelPodTemplateHash]; ok {
		c.Labels = maps.Clone(c.Labels)
		delete(c.Labels, LabelPodTemplateHash)
	}
	// encoding/json writes map keys sorted: the encoding is canonical.
	b, err := json.Marshal(&c)
	if err != nil {
		panic(fmt.Sprintf("placement: hashing a pod template: %v", err))
	}
	h := fnv.New32a()
	h.Write(b)
	if collisionCount != 0 {
		fmt.Fprintf(h, "/%d", collisionCount)
	}
	v := h.Sum32()
	out := make([]byte, 0, 8)
	for v > 0 || len(out) == 0 {
		out = append(out, suffixAlphabet[v%uint32(len(suffixAlphabet))])
		v /= uint32(len(suffixAlphabet))
	}
	return string(out)
}

// setCondition returns conds with c in place of the condition of its type.
// lastTransitionTime moves to now only when the status changes; it reports
// whether anything but lastUpdateTime/lastProbeTime changed.
func setCondition(conds []api.Condition, c api.Condition, now time.Time) ([]api.Condition, bool) {
	out := append([]api.Condition(nil), conds...)
	for i := range out {
		if out[i].Type != c.Type {
			continue
		}
		old := out[i]
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
			if old.Reason == c.Reason && old.Message == c.Message {
				if c.LastUpdateTime.IsZero() {
					c.LastUpdateTime = old.LastUpdateTime
				}
				out[i] = c
				return out, c != old
			}
		} else {
			c.LastTransitionTime = api.NewTime(now)
		}
		if c.LastUpdateTime.IsZero() {
			c.LastUpdateTime = api.NewTime(now)
		}
		out[i] = c
		return out, true
	}
	c.LastTransitionTime = api.NewTime(now)
	if c.LastUpdateTime.IsZero() {
		c.LastUpdateTime = api.NewTime(now)
	}
	return append(out, c), true
}

// labelsContain: every pair of want is in have.
func labelsContain(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// olderFirst orders objects by creation time, then name, for deterministic
// "oldest wins" decisions.
func olderFirst(a, b *api.ObjectMeta) bool {
	if !a.CreationTimestamp.Equal(b.CreationTimestamp.Time) {
		return a.CreationTimestamp.Before(b.CreationTimestamp.Time)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
