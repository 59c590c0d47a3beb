package api

import (
	"fmt"
	"strconv"
	"strings"
)

// Checks of pod specs (also the templates of workloads): volumes,
// scheduling constraints, and what a pod update may change. The containers'
// own checks are in validate_container.go.

// podUpdate allows a pod's spec to change only in container images,
// activeDeadlineSeconds, added tolerations and, once, nodeName (binding).
func (v *validator) podUpdate(n, o *PodSpec) {
	if o.NodeName != "" {
		v.immutable("spec.nodeName", n.NodeName, o.NodeName)
	}
	// Copy the mutable fields from new into a copy of old and compare.
	c := deepCopy(o)
	c.NodeName = n.NodeName
	c.ActiveDeadlineSeconds = n.ActiveDeadlineSeconds
	if len(n.Containers) == len(c.Containers) {
		for i := range n.Containers {
			c.Containers[i].Image = n.Containers[i].Image
		}
	}
	if len(n.InitContainers) == len(c.InitContainers) {
		for i := range n.InitContainers {
			c.InitContainers[i].Image = n.InitContainers[i].Image
		}
	}
	if len(n.Tolerations) >= len(o.Tolerations) && (len(o.Tolerations) == 0 || sameJSON(n.Tolerations[:len(o.Tolerations)], o.Tolerations)) {
		c.Tolerations = n.Tolerations
	}
	if !sameJSON(c, n) {
		v.add(Forbidden("spec", "pod updates may only change container images, activeDeadlineSeconds, add tolerations and set nodeName"))
	}
}

// podSpec checks a pod spec. extraVolumes are names a volumeMount may use
// besides the pod's volumes (a StatefulSet's claim templates); inTemplate
// is set for the template of a workload, whose pods must restart always.
func (v *validator) podSpec(s *PodSpec, p path, extraVolumes map[string]bool, inTemplate bool) {
	volumes := v.volumes(s.Volumes, p.child("volumes"))
	for name := range extraVolumes {
		volumes[name] = true
	}
	if len(s.Containers) == 0 {
		v.add(Required(p.child("containers").String(), "a pod needs at least one container"))
	}
	names := map[string]bool{}
	for i := range s.InitContainers {
		v.container(&s.InitContainers[i], p.child("initContainers").index(i), volumes, names, true)
	}
	for i := range s.Containers {
		v.container(&s.Containers[i], p.child("containers").index(i), volumes, names, false)
	}
	v.preStopSleeps(s, p)
	if s.RestartPolicy != "" {
		if inTemplate {
			v.enum(p.child("restartPolicy"), s.RestartPolicy, []string{RestartAlways})
		} else {
			v.enum(p.child("restartPolicy"), s.RestartPolicy, restartPolicies)
		}
	}
	if s.TerminationGracePeriodSeconds != nil {
		v.nonNegative(p.child("terminationGracePeriodSeconds"), *s.TerminationGracePeriodSeconds)
	}
	if s.ActiveDeadlineSeconds != nil && *s.ActiveDeadlineSeconds <= 0 {
		v.add(Invalid(p.child("activeDeadlineSeconds").String(), *s.ActiveDeadlineSeconds, "must be greater than 0"))
	}
	v.labels(p.child("nodeSelector"), s.NodeSelector)
	if s.NodeName != "" {
		nameDNSSubdomain(v, p.child("nodeName"), s.NodeName)
	}
	if s.Hostname != "" {
		nameDNSLabel(v, p.child("hostname"), s.Hostname)
	}
	if s.Subdomain != "" {
		nameDNSLabel(v, p.child("subdomain"), s.Subdomain)
	}
	v.optEnum(p.child("dnsPolicy"), s.DNSPolicy, dnsPolicies)
	if s.Affinity != nil && s.Affinity.NodeAffinity != nil {
		v.nodeAffinity(s.Affinity.NodeAffinity, p.child("affinity").child("nodeAffinity"))
	}
	for i := range s.Tolerations {
		v.toleration(&s.Tolerations[i], p.child("tolerations").index(i))
	}
}

// volumes checks the pod's volumes and returns the set of their names.
func (v *validator) volumes(vols []Volume, p path) map[string]bool {
	names := map[string]bool{}
	for i := range vols {
		vol := &vols[i]
		vp := p.index(i)
		if vol.Name == "" {
			v.add(Required(vp.child("name").String(), ""))
		} else {
			nameDNSLabel(v, vp.child("name"), vol.Name)
			if names[vol.Name] {
				v.add(Duplicate(vp.child("name").String(), vol.Name))
			}
		}
		names[vol.Name] = true

		var sources []string
		if s := vol.EmptyDir; s != nil {
			sources = append(sources, "emptyDir")
			sp := vp.child("emptyDir")
			if s.Medium != "" {
				v.enum(sp.child("medium"), s.Medium, []string{"Memory"})
			}
			if s.SizeLimit != nil {
				v.quantity(sp.child("sizeLimit"), *s.SizeLimit, false)
			}
		}
		if s := vol.HostPath; s != nil {
			sources = append(sources, "hostPath")
			sp := vp.child("hostPath")
			v.absPath(sp.child("path"), s.Path)
			if s.Type != "" {
				v.enum(sp.child("type"), s.Type, hostPathTypes)
			}
		}
		if s := vol.ConfigMap; s != nil {
			sources = append(sources, "configMap")
			sp := vp.child("configMap")
			v.requiredName(sp.child("name"), s.Name, nameDNSSubdomain)
			v.keyToPaths(sp.child("items"), s.Items)
			v.fileMode(sp.child("defaultMode"), s.DefaultMode)
		}
		if s := vol.Secret; s != nil {
			sources = append(sources, "secret")
			sp := vp.child("secret")
			v.requiredName(sp.child("secretName"), s.SecretName, nameDNSSubdomain)
			v.keyToPaths(sp.child("items"), s.Items)
			v.fileMode(sp.child("defaultMode"), s.DefaultMode)
		}
		if s := vol.PersistentVolumeClaim; s != nil {
			sources = append(sources, "persistentVolumeClaim")
			v.requiredName(vp.child("persistentVolumeClaim").child("claimName"), s.ClaimName, nameDNSSubdomain)
		}
		switch {
		case len(sources) == 0:
			v.add(Required(vp.String(), "must specify one volume source: emptyDir, hostPath, configMap, secret or persistentVolumeClaim"))
		case len(sources) > 1:
			v.add(Forbidden(vp.child(sources[1]).String(), "may not specify more than one volume source"))
		}
	}
	return names
}

func (v *validator) keyToPaths(p path, items []KeyToPath) {
	for i, it := range items {
		ip := p.index(i)
		if it.Key == "" {
			v.add(Required(ip.child("key").String(), ""))
		}
		v.relPath(ip.child("path"), it.Path, true)
		v.fileMode(ip.child("mode"), it.Mode)
	}
}

func (v *validator) fileMode(p path, m *int32) {
	if m != nil && (*m < 0 || *m > 0o777) {
		v.add(Invalid(p.String(), *m, "must be a file mode between 0 and 0777 (511)"))
	}
}

func (v *validator) absPath(p path, s string) {
	switch {
	case s == "":
		v.add(Required(p.String(), ""))
	case !strings.HasPrefix(s, "/"):
		v.add(Invalid(p.String(), s, "must be an absolute path"))
	}
}

// relPath checks a path that must stay below some directory.
func (v *validator) relPath(p path, s string, required bool) {
	if s == "" {
		if required {
			v.add(Required(p.String(), ""))
		}
		return
	}
	if strings.HasPrefix(s, "/") {
		v.add(Invalid(p.String(), s, "must be a relative path"))
		return
	}
	for _, part := range strings.Split(s, "/") {
		if part == ".." {
			v.add(Invalid(p.String(), s, "must not contain '..'"))
			return
		}
	}
}

func (v *validator) nodeAffinity(na *NodeAffinity, p path) {
	if r := na.RequiredDuringSchedulingIgnoredDuringExecution; r != nil {
		rp := p.child("requiredDuringSchedulingIgnoredDuringExecution").child("nodeSelectorTerms")
		if len(r.NodeSelectorTerms) == 0 {
			v.add(Required(rp.String(), "must have at least one node selector term"))
		}
		for i := range r.NodeSelectorTerms {
			v.nodeSelectorTerm(&r.NodeSelectorTerms[i], rp.index(i))
		}
	}
	for i, pt := range na.PreferredDuringSchedulingIgnoredDuringExecution {
		pp := p.child("preferredDuringSchedulingIgnoredDuringExecution").index(i)
		if pt.Weight < 1 || pt.Weight > MaxSchedulingWeight {
			v.add(Invalid(pp.child("weight").String(), pt.Weight, fmt.Sprintf("must be between 1 and %d, inclusive", MaxSchedulingWeight)))
		}
		v.nodeSelectorTerm(&pt.Preference, pp.child("preference"))
	}
}

func (v *validator) nodeSelectorTerm(t *NodeSelectorTerm, p path) {
	for i, r := range t.MatchExpressions {
		rp := p.child("matchExpressions").index(i)
		v.labelKey(rp.child("key"), r.Key)
		if !v.enum(rp.child("operator"), r.Operator, nodeOperators) {
			continue
		}
		v.requirementValues(rp.child("values"), r.Operator, r.Values)
	}
}

// requirementValues checks the values of a selector expression against its
// (already valid) operator.
func (v *validator) requirementValues(p path, op string, values []string) {
	switch op {
	case "In", "NotIn":
		if len(values) == 0 {
			v.add(Required(p.String(), "must be specified when operator is "+op))
		}
		for i, val := range values {
			v.labelValue(p.index(i), val)
		}
	case "Exists", "DoesNotExist":
		if len(values) > 0 {
			v.add(Forbidden(p.String(), "may not be specified when operator is "+op))
		}
	case "Gt", "Lt":
		if len(values) != 1 {
			v.add(Required(p.String(), "must have exactly one value when operator is "+op))
			return
		}
		if _, err := strconv.ParseInt(values[0], 10, 64); err != nil {
			v.add(Invalid(p.index(0).String(), values[0], "must be an integer"))
		}
	}
}

func (v *validator) toleration(t *Toleration, p path) {
	if t.Key != "" {
		v.labelKey(p.child("key"), t.Key)
	}
	if t.Operator != "" {
		v.enum(p.child("operator"), t.Operator, tolerationOperators)
	}
	switch {
	case t.Key == "" && t.Operator != "Exists":
		v.add(Invalid(p.child("operator").String(), t.Operator, "must be Exists when key is empty"))
	case t.Operator == "Exists" && t.Value != "":
		v.add(Invalid(p.child("value").String(), t.Value, "must be empty when operator is Exists"))
	case t.Value != "":
		v.labelValue(p.child("value"), t.Value)
	}
	if t.Effect != "" {
		v.enum(p.child("effect"), t.Effect, taintEffects)
	}
	if t.TolerationSeconds != nil && t.Effect != TaintNoExecute {
		v.add(Invalid(p.child("effect").String(), t.Effect, "must be NoExecute when tolerationSeconds is set"))
	}
}
