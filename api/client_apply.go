package api

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
)

// Apply results.
const (
	ApplyCreated    = "created"
	ApplyConfigured = "configured"
	ApplyUnchanged  = "unchanged"
)

// Apply creates obj, or, if it exists, updates it to obj's metadata and
// spec unless they already match (after defaulting). It returns the object
// as stored and what it did: created, configured or unchanged. The update
// goes against the resourceVersion it read, retrying a few times on
// conflict.
func (c *Client) Apply(ctx context.Context, obj Object) (Object, string, error) {
	k, desired, err := objectInfo(obj)
	if err != nil {
		return nil, "", err
	}
	m := desired.GetObjectMeta()
	m.ResourceVersion = ""
	created, err := c.Create(ctx, desired)
	if err == nil {
		return created, ApplyCreated, nil
	}
	if !IsAlreadyExists(err) {
		return nil, "", err
	}
	for attempt := 1; ; attempt++ {
		cur, err := c.Get(ctx, k.Kind, m.Namespace, m.Name)
		if err != nil {
			return nil, "", err
		}
		upd := desired.DeepCopyObject()
		keepServerFields(upd, cur)
		defaulted := upd.DeepCopyObject()
		SetDefaults(defaulted)
		if sameIntent(defaulted, cur) {
			return cur, ApplyUnchanged, nil
		}
		upd.GetObjectMeta().ResourceVersion = cur.GetObjectMeta().ResourceVersion
		out, err := c.Update(ctx, upd)
		if err == nil {
			return out, ApplyConfigured, nil
		}
		if !IsConflict(err) || attempt >= maxApplyAttempts {
			return nil, "", err
		}
	}
}

// serverPrefixes mark the annotations and labels that the control plane
// writes (revisions, volume bindings, template hashes): a manifest that does
// not mention them keeps them.
var serverPrefixes = []string{"deployment.kubernetes.io/", "shoal.dev/", "pod-template-hash", "controller-revision-hash"}

func serverOwned(key string) bool {
	for _, p := range serverPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// keepServerFields copies into want what the control plane filled in cur
// and the manifest leaves out, so that applying the same manifest again is
// "unchanged" and never tries to undo an allocation: a Service's clusterIP
// and node ports, a Node's pod CIDR, and the control plane's annotations and
// labels. (kubectl gets the same effect from a three-way merge.) What
// SetDefaults fills, such as a Service's traffic policies and session
// affinity timeout, needs no keeping: Apply compares after defaulting.
func keepServerFields(want, cur Object) {
	wm, cm := want.GetObjectMeta(), cur.GetObjectMeta()
	for k, v := range cm.Annotations {
		if _, set := wm.Annotations[k]; !set && serverOwned(k) {
			if wm.Annotations == nil {
				wm.Annotations = map[string]string{}
			}
			wm.Annotations[k] = v
		}
	}
	for k, v := range cm.Labels {
		if _, set := wm.Labels[k]; !set && serverOwned(k) {
			if wm.Labels == nil {
				wm.Labels = map[string]string{}
			}
			wm.Labels[k] = v
		}
	}
	switch w := want.(type) {
	case *Service:
		c := cur.(*Service)
		if w.Spec.ClusterIP == "" {
			w.Spec.ClusterIP = c.Spec.ClusterIP
			if len(w.Spec.ClusterIPs) == 0 {
				w.Spec.ClusterIPs = c.Spec.ClusterIPs
			}
		}
		for i := range w.Spec.Ports {
			if w.Spec.Ports[i].NodePort != 0 {
				continue
			}
			for _, cp := range c.Spec.Ports {
				if cp.Port == w.Spec.Ports[i].Port && (cp.Protocol == w.Spec.Ports[i].Protocol || w.Spec.Ports[i].Protocol == "") {
					w.Spec.Ports[i].NodePort = cp.NodePort
				}
			}
		}
	case *Node:
		c := cur.(*Node)
		if w.Spec.PodCIDR == "" {
			w.Spec.PodCIDR = c.Spec.PodCIDR
			w.Spec.PodCIDRs = c.Spec.PodCIDRs
		}
	}
}

// sameIntent reports whether cur already holds what want asks for: the
// same labels and annotations, and the same top-level content other than
// metadata and status (spec, or data for ConfigMaps and Secrets).
func sameIntent(want, cur Object) bool {
	wm, cm := want.GetObjectMeta(), cur.GetObjectMeta()
	if !equalStringMaps(wm.Labels, cm.Labels) || !equalStringMaps(wm.Annotations, cm.Annotations) {
		return false
	}
	a, errA := contentOf(want)
	b, errB := contentOf(cur)
	return errA == nil && errB == nil && reflect.DeepEqual(a, b)
}

func contentOf(obj Object) (map[string]any, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range []string{"apiVersion", "kind", "metadata", "status"} {
		delete(m, k)
	}
	return m, nil
}

func equalStringMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
