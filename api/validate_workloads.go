package api

import (
	"strconv"
	"strings"
)

// Checks of the workload kinds: ReplicaSet, Deployment, DaemonSet and
// StatefulSet.

// labelSelector checks the syntax of a selector and returns whether it is
// usable for matching.
func (v *validator) labelSelector(s *LabelSelector, p path) bool {
	before := len(v.errs)
	v.labels(p.child("matchLabels"), s.MatchLabels)
	for i, r := range s.MatchExpressions {
		rp := p.child("matchExpressions").index(i)
		v.labelKey(rp.child("key"), r.Key)
		if v.enum(rp.child("operator"), r.Operator, selectorOperators) {
			v.requirementValues(rp.child("values"), r.Operator, r.Values)
		}
	}
	return len(v.errs) == before
}

// workload checks what ReplicaSets, Deployments, DaemonSets and
// StatefulSets share: a selector that matches the labels of the template,
// and the template itself.
func (v *validator) workload(sel *LabelSelector, t *PodTemplateSpec, p path, extraVolumes map[string]bool) {
	sp := p.child("selector")
	tp := p.child("template")
	switch {
	case sel == nil:
		v.add(Required(sp.String(), ""))
	case len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0:
		v.add(Invalid(sp.String(), map[string]string{}, "empty selector is not allowed: it would select every pod"))
	default:
		if !v.labelSelector(sel, sp) {
			break
		}
		if ls, err := LabelSelectorAsSelector(sel); err == nil && !ls.Matches(t.Labels) {
			labels := t.Labels
			if labels == nil {
				labels = map[string]string{}
			}
			v.add(Invalid(tp.child("metadata").child("labels").String(), labels, "selector does not match template labels"))
		}
	}
	v.objectMetaCommon(tp.child("metadata"), &t.ObjectMeta)
	v.podSpec(&t.Spec, tp.child("spec"), extraVolumes, true)
}

func (v *validator) deployment(s *DeploymentSpec) {
	p := path("spec")
	v.replicas(s.Replicas, p.child("replicas"))
	v.workload(s.Selector, &s.Template, p, nil)
	v.nonNegative(p.child("minReadySeconds"), int64(s.MinReadySeconds))
	if s.RevisionHistoryLimit != nil {
		v.nonNegative(p.child("revisionHistoryLimit"), int64(*s.RevisionHistoryLimit))
	}
	if d := s.ProgressDeadlineSeconds; d != nil {
		if *d <= s.MinReadySeconds {
			v.add(Invalid(p.child("progressDeadlineSeconds").String(), *d, "must be greater than minReadySeconds"))
		}
	}
	stp := p.child("strategy")
	v.optEnum(stp.child("type"), s.Strategy.Type, deploymentStrategy)
	ru := s.Strategy.RollingUpdate
	switch {
	case s.Strategy.Type == RecreateStrategy && ru != nil:
		v.add(Forbidden(stp.child("rollingUpdate").String(), "may not be specified when strategy type is Recreate"))
	case ru != nil:
		surge := v.intOrPercent(stp.child("rollingUpdate").child("maxSurge"), ru.MaxSurge, false)
		unavail := v.intOrPercent(stp.child("rollingUpdate").child("maxUnavailable"), ru.MaxUnavailable, true)
		if surge == 0 && unavail == 0 {
			v.add(Invalid(stp.child("rollingUpdate").child("maxUnavailable").String(), ru.MaxUnavailable, "may not be 0 when maxSurge is 0"))
		}
	}
}

// intOrPercent checks a rolling-update bound: a non-negative integer or a
// percentage "N%" (at most 100% when capped). It returns 0 for a zero
// bound, 1 for a positive one and -1 for an unset or invalid one.
func (v *validator) intOrPercent(p path, x *IntOrString, capped bool) int {
	if x == nil {
		return -1
	}
	n := int(x.IntVal)
	if x.IsString {
		s := x.StrVal
		pct, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
		if !strings.HasSuffix(s, "%") || err != nil || strings.HasPrefix(s, "+") {
			v.add(Invalid(p.String(), *x, "must be an integer or a percentage such as '25%'"))
			return -1
		}
		if capped && pct > 100 {
			v.add(Invalid(p.String(), *x, "must not be greater than 100%"))
			return -1
		}
		n = pct
	}
	if n < 0 {
		v.add(Invalid(p.String(), *x, "must be greater than or equal to 0"))
		return -1
	}
	if n == 0 {
		return 0
	}
	return 1
}

func (v *validator) daemonSet(s *DaemonSetSpec) {
	p := path("spec")
	v.workload(s.Selector, &s.Template, p, nil)
	v.nonNegative(p.child("minReadySeconds"), int64(s.MinReadySeconds))
	if s.RevisionHistoryLimit != nil {
		v.nonNegative(p.child("revisionHistoryLimit"), int64(*s.RevisionHistoryLimit))
	}
	up := p.child("updateStrategy")
	v.optEnum(up.child("type"), s.UpdateStrategy.Type, setUpdateStrategies)
	ru := s.UpdateStrategy.RollingUpdate
	switch {
	case s.UpdateStrategy.Type == OnDeleteStrategy && ru != nil:
		v.add(Forbidden(up.child("rollingUpdate").String(), "may not be specified when strategy type is OnDelete"))
	case ru != nil:
		surge := v.intOrPercent(up.child("rollingUpdate").child("maxSurge"), ru.MaxSurge, true)
		unavail := v.intOrPercent(up.child("rollingUpdate").child("maxUnavailable"), ru.MaxUnavailable, true)
		if surge <= 0 && unavail == 0 {
			v.add(Invalid(up.child("rollingUpdate").child("maxUnavailable").String(), ru.MaxUnavailable, "may not be 0 when maxSurge is 0"))
		}
	}
}

func (v *validator) statefulSet(s *StatefulSetSpec) {
	p := path("spec")
	v.replicas(s.Replicas, p.child("replicas"))
	v.nonNegative(p.child("minReadySeconds"), int64(s.MinReadySeconds))
	if s.RevisionHistoryLimit != nil {
		v.nonNegative(p.child("revisionHistoryLimit"), int64(*s.RevisionHistoryLimit))
	}
	if s.ServiceName != "" {
		nameDNS1035Label(v, p.child("serviceName"), s.ServiceName)
	}
	v.optEnum(p.child("podManagementPolicy"), s.PodManagementPolicy, podManagement)
	up := p.child("updateStrategy")
	v.optEnum(up.child("type"), s.UpdateStrategy.Type, setUpdateStrategies)
	if ru := s.UpdateStrategy.RollingUpdate; ru != nil {
		rp := up.child("rollingUpdate")
		if s.UpdateStrategy.Type == OnDeleteStrategy {
			v.add(Forbidden(rp.String(), "may not be specified when strategy type is OnDelete"))
		} else {
			if ru.Partition != nil {
				v.nonNegative(rp.child("partition"), int64(*ru.Partition))
			}
			if ru.MaxUnavailable != nil && v.intOrPercent(rp.child("maxUnavailable"), ru.MaxUnavailable, true) == 0 {
				v.add(Invalid(rp.child("maxUnavailable").String(), *ru.MaxUnavailable, "must be greater than 0"))
			}
		}
	}
	claims := map[string]bool{}
	for i := range s.VolumeClaimTemplates {
		c := &s.VolumeClaimTemplates[i]
		cp := p.child("volumeClaimTemplates").index(i)
		np := cp.child("metadata").child("name")
		if c.Name == "" {
			v.add(Required(np.String(), ""))
		} else {
			nameDNSLabel(v, np, c.Name)
			if claims[c.Name] {
				v.add(Duplicate(np.String(), c.Name))
			}
		}
		claims[c.Name] = true
		v.objectMetaCommon(cp.child("metadata"), &c.ObjectMeta)
		sp := cp.child("spec")
		for j, m := range c.Spec.AccessModes {
			v.enum(sp.child("accessModes").index(j), m, accessModes)
		}
		rp := sp.child("resources")
		if _, ok := c.Spec.Resources.Requests[ResourceStorage]; !ok {
			v.add(Required(rp.child("requests").key(ResourceStorage).String(), ""))
		}
		v.resources(rp, c.Spec.Resources.Requests, c.Spec.Resources.Limits)
	}
	for name := range claims {
		for _, vol := range s.Template.Spec.Volumes {
			if vol.Name == name {
				v.add(Invalid(p.child("template").child("spec").child("volumes").String(), name, "a pod volume may not have the name of a volume claim template"))
			}
		}
	}
	v.workload(s.Selector, &s.Template, p, claims)
}
