package api

import (
	"fmt"
	"strconv"
	"strings"
)

// Checks of pod specs (also the templates of workloads): containers,
// volumes, probes, scheduling constraints, and what a pod update may change.

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

func (v *validator) container(c *Container, p path, volumes, names map[string]bool, init bool) {
	if c.Name == "" {
		v.add(Required(p.child("name").String(), ""))
	} else {
		nameDNSLabel(v, p.child("name"), c.Name)
		if names[c.Name] {
			v.add(Duplicate(p.child("name").String(), c.Name))
		}
	}
	names[c.Name] = true
	switch {
	case c.Image == "":
		v.add(Required(p.child("image").String(), ""))
	case strings.TrimSpace(c.Image) != c.Image:
		v.add(Invalid(p.child("image").String(), c.Image, "must not have leading or trailing whitespace"))
	}
	v.optEnum(p.child("imagePullPolicy"), c.ImagePullPolicy, pullPolicies)
	if c.WorkingDir != "" && !strings.HasPrefix(c.WorkingDir, "/") {
		v.add(Invalid(p.child("workingDir").String(), c.WorkingDir, "must be an absolute path"))
	}

	portNames := map[string]bool{}
	for i, cp := range c.Ports {
		pp := p.child("ports").index(i)
		v.port(pp.child("containerPort"), cp.ContainerPort)
		if cp.HostPort != 0 {
			v.port(pp.child("hostPort"), cp.HostPort)
		}
		v.optEnum(pp.child("protocol"), cp.Protocol, protocols)
		if cp.Name != "" {
			if v.portName(pp.child("name"), cp.Name) && portNames[cp.Name] {
				v.add(Duplicate(pp.child("name").String(), cp.Name))
			}
			portNames[cp.Name] = true
		}
	}

	for i := range c.Env {
		v.envVar(&c.Env[i], p.child("env").index(i))
	}
	for i, ef := range c.EnvFrom {
		ep := p.child("envFrom").index(i)
		if ef.Prefix != "" && !envVarNameRE.MatchString(ef.Prefix) {
			v.add(Invalid(ep.child("prefix").String(), ef.Prefix, "must consist of letters, digits, '-', '.' and '_', not starting with a digit"))
		}
		switch {
		case ef.ConfigMapRef != nil && ef.SecretRef != nil:
			v.add(Forbidden(ep.child("secretRef").String(), "may not be specified together with configMapRef"))
		case ef.ConfigMapRef != nil:
			v.requiredName(ep.child("configMapRef").child("name"), ef.ConfigMapRef.Name, nameDNSSubdomain)
		case ef.SecretRef != nil:
			v.requiredName(ep.child("secretRef").child("name"), ef.SecretRef.Name, nameDNSSubdomain)
		default:
			v.add(Required(ep.String(), "must specify configMapRef or secretRef"))
		}
	}

	v.resources(p.child("resources"), c.Resources.Requests, c.Resources.Limits)

	mountPaths := map[string]bool{}
	for i, m := range c.VolumeMounts {
		mp := p.child("volumeMounts").index(i)
		switch {
		case m.Name == "":
			v.add(Required(mp.child("name").String(), ""))
		case !volumes[m.Name]:
			v.add(NotFound(mp.child("name").String(), m.Name))
		}
		v.absPath(mp.child("mountPath"), m.MountPath)
		if m.MountPath != "" {
			if mountPaths[m.MountPath] {
				v.add(Invalid(mp.child("mountPath").String(), m.MountPath, "must be unique"))
			}
			mountPaths[m.MountPath] = true
		}
		v.relPath(mp.child("subPath"), m.SubPath, false)
	}

	probes := []struct {
		name string
		p    *Probe
	}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}}
	for _, pr := range probes {
		if pr.p == nil {
			continue
		}
		if init {
			v.add(Forbidden(p.child(pr.name).String(), "init containers may not have probes"))
			continue
		}
		v.probe(pr.p, p.child(pr.name), pr.name != "readinessProbe")
	}
}

func (v *validator) envVar(e *EnvVar, p path) {
	if e.Name == "" {
		v.add(Required(p.child("name").String(), ""))
	} else if !envVarNameRE.MatchString(e.Name) {
		v.add(Invalid(p.child("name").String(), e.Name, "must consist of letters, digits, '-', '.' and '_', not starting with a digit"))
	}
	if e.ValueFrom == nil {
		return
	}
	vp := p.child("valueFrom")
	if e.Value != "" {
		v.add(Forbidden(vp.String(), "may not be specified when value is not empty"))
	}
	var n int
	if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
		n++
		v.keySelector(vp.child("configMapKeyRef"), r)
	}
	if r := e.ValueFrom.SecretKeyRef; r != nil {
		n++
		v.keySelector(vp.child("secretKeyRef"), r)
	}
	if r := e.ValueFrom.FieldRef; r != nil {
		n++
		if r.FieldPath == "" {
			v.add(Required(vp.child("fieldRef").child("fieldPath").String(), ""))
		}
	}
	switch {
	case n == 0:
		v.add(Required(vp.String(), "must specify one of configMapKeyRef, secretKeyRef or fieldRef"))
	case n > 1:
		v.add(Invalid(vp.String(), "", "may not have more than one source"))
	}
}

func (v *validator) keySelector(p path, r *KeySelector) {
	v.requiredName(p.child("name"), r.Name, nameDNSSubdomain)
	if r.Key == "" {
		v.add(Required(p.child("key").String(), ""))
	} else {
		v.configKey(p.child("key"), r.Key)
	}
}

// quantity parses q; cpu counts in thousandths, everything else in units.
func (v *validator) quantity(p path, q Quantity, milli bool) (int64, bool) {
	var n int64
	var err error
	if milli {
		n, err = q.MilliValue()
	} else {
		n, err = q.Value()
	}
	if err != nil {
		v.add(Invalid(p.String(), q, err.Error()))
		return 0, false
	}
	return n, true
}

// resources checks that every amount parses and no request exceeds its
// limit.
func (v *validator) resources(p path, requests, limits ResourceList) {
	lim := map[string]int64{}
	for _, name := range sortedKeys(limits) {
		if n, ok := v.quantity(p.child("limits").key(name), limits[name], name == ResourceCPU); ok {
			lim[name] = n
		}
	}
	for _, name := range sortedKeys(requests) {
		rp := p.child("requests").key(name)
		n, ok := v.quantity(rp, requests[name], name == ResourceCPU)
		if !ok {
			continue
		}
		if l, has := lim[name]; has && n > l {
			v.add(Invalid(rp.String(), requests[name], fmt.Sprintf("must be less than or equal to %s limit of %s", name, limits[name])))
		}
	}
}

func (v *validator) probe(pr *Probe, p path, mustSucceedOnce bool) {
	var handlers []string
	if pr.Exec != nil {
		handlers = append(handlers, "exec")
		if len(pr.Exec.Command) == 0 {
			v.add(Required(p.child("exec").child("command").String(), ""))
		}
	}
	if h := pr.HTTPGet; h != nil {
		handlers = append(handlers, "httpGet")
		hp := p.child("httpGet")
		v.portOrName(hp.child("port"), h.Port)
		v.optEnum(hp.child("scheme"), h.Scheme, probeSchemes)
		if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
			v.add(Invalid(hp.child("path").String(), h.Path, "must start with '/'"))
		}
		for i, hd := range h.HTTPHeaders {
			if hd.Name == "" {
				v.add(Required(hp.child("httpHeaders").index(i).child("name").String(), ""))
			}
		}
	}
	if t := pr.TCPSocket; t != nil {
		handlers = append(handlers, "tcpSocket")
		v.portOrName(p.child("tcpSocket").child("port"), t.Port)
	}
	switch {
	case len(handlers) == 0:
		v.add(Required(p.String(), "must specify one handler: exec, httpGet or tcpSocket"))
	case len(handlers) > 1:
		v.add(Forbidden(p.child(handlers[1]).String(), "may not specify more than one handler"))
	}
	v.nonNegative(p.child("initialDelaySeconds"), int64(pr.InitialDelaySeconds))
	v.nonNegative(p.child("timeoutSeconds"), int64(pr.TimeoutSeconds))
	v.nonNegative(p.child("periodSeconds"), int64(pr.PeriodSeconds))
	v.nonNegative(p.child("successThreshold"), int64(pr.SuccessThreshold))
	v.nonNegative(p.child("failureThreshold"), int64(pr.FailureThreshold))
	if mustSucceedOnce && pr.SuccessThreshold > 1 {
		v.add(Invalid(p.child("successThreshold").String(), pr.SuccessThreshold, "must be 1"))
	}
}

// portOrName checks a port given as a number or as a named container port.
func (v *validator) portOrName(p path, port IntOrString) {
	if port.IsString {
		if port.StrVal == "" {
			v.add(Required(p.String(), ""))
			return
		}
		v.portName(p, port.StrVal)
		return
	}
	v.port(p, port.IntVal)
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
