package api

import (
	"fmt"
	"strings"
)

// Checks of a pod's containers: image, ports, environment, resources,
// mounts, probes and lifecycle hooks.

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

	v.containerProbes(c, p, init)
	if c.Lifecycle != nil {
		if init {
			v.add(Forbidden(p.child("lifecycle").String(), "init containers may not have lifecycle hooks"))
		} else {
			v.lifecycle(c.Lifecycle, p.child("lifecycle"))
		}
	}
}

// containerProbes checks a container's probes; an init container may have
// none.
func (v *validator) containerProbes(c *Container, p path, init bool) {
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

// lifecycle checks a container's hooks: each has exactly one action.
func (v *validator) lifecycle(l *Lifecycle, p path) {
	h := l.PreStop
	if h == nil {
		return
	}
	hp := p.child("preStop")
	var handlers []string
	if h.Exec != nil {
		handlers = append(handlers, "exec")
		v.execAction(hp.child("exec"), h.Exec)
	}
	if h.HTTPGet != nil {
		handlers = append(handlers, "httpGet")
		v.httpGetAction(hp.child("httpGet"), h.HTTPGet)
	}
	if h.Sleep != nil {
		handlers = append(handlers, "sleep")
		if h.Sleep.Seconds < 1 {
			v.add(Invalid(hp.child("sleep").child("seconds").String(), h.Sleep.Seconds, "must be greater than 0"))
		}
	}
	v.oneHandler(hp, handlers, "exec, httpGet or sleep")
}

// preStopSleeps checks that no preStop sleep outlasts the pod's grace
// period (the default one when it is not set yet), after which the
// container is killed anyway.
func (v *validator) preStopSleeps(s *PodSpec, p path) {
	grace := int64(DefaultTerminationGracePeriodSeconds)
	if s.TerminationGracePeriodSeconds != nil {
		grace = *s.TerminationGracePeriodSeconds
	}
	for i, c := range s.Containers {
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
			continue
		}
		if n := c.Lifecycle.PreStop.Sleep.Seconds; n > grace {
			sp := p.child("containers").index(i).child("lifecycle").child("preStop").child("sleep").child("seconds")
			v.add(Invalid(sp.String(), n, fmt.Sprintf("must not be greater than terminationGracePeriodSeconds (%d)", grace)))
		}
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
		v.execAction(p.child("exec"), pr.Exec)
	}
	if pr.HTTPGet != nil {
		handlers = append(handlers, "httpGet")
		v.httpGetAction(p.child("httpGet"), pr.HTTPGet)
	}
	if t := pr.TCPSocket; t != nil {
		handlers = append(handlers, "tcpSocket")
		v.portOrName(p.child("tcpSocket").child("port"), t.Port)
	}
	v.oneHandler(p, handlers, "exec, httpGet or tcpSocket")
	v.nonNegative(p.child("initialDelaySeconds"), int64(pr.InitialDelaySeconds))
	v.nonNegative(p.child("timeoutSeconds"), int64(pr.TimeoutSeconds))
	v.nonNegative(p.child("periodSeconds"), int64(pr.PeriodSeconds))
	v.nonNegative(p.child("successThreshold"), int64(pr.SuccessThreshold))
	v.nonNegative(p.child("failureThreshold"), int64(pr.FailureThreshold))
	if mustSucceedOnce && pr.SuccessThreshold > 1 {
		v.add(Invalid(p.child("successThreshold").String(), pr.SuccessThreshold, "must be 1"))
	}
}

// oneHandler checks that a probe or a hook at p has exactly one of its
// actions; found names those it has, allowed those it may have.
func (v *validator) oneHandler(p path, found []string, allowed string) {
	switch {
	case len(found) == 0:
		v.add(Required(p.String(), "must specify one handler: "+allowed))
	case len(found) > 1:
		v.add(Forbidden(p.child(found[1]).String(), "may not specify more than one handler"))
	}
}

// Actions shared by probes and lifecycle hooks.

func (v *validator) execAction(p path, e *ExecAction) {
	if len(e.Command) == 0 {
		v.add(Required(p.child("command").String(), ""))
	}
}

func (v *validator) httpGetAction(p path, h *HTTPGetAction) {
	v.portOrName(p.child("port"), h.Port)
	v.optEnum(p.child("scheme"), h.Scheme, probeSchemes)
	if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
		v.add(Invalid(p.child("path").String(), h.Path, "must start with '/'"))
	}
	for i, hd := range h.HTTPHeaders {
		if hd.Name == "" {
			v.add(Required(p.child("httpHeaders").index(i).child("name").String(), ""))
		}
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
