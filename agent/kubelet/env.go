package kubelet

// From a pod's container to the runtime's ContainerSpec: environment
// (env, valueFrom, envFrom, $(VAR) expansion), resources, mounts, labels.

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/runtime"
	"github.com/shoal-dev/shoal/dataplane/volume"
)

// errContainerConfig: the container cannot be created as configured yet (a
// ConfigMap, Secret or key it reads is missing). Reported as the waiting
// reason CreateContainerConfigError and retried.
var errContainerConfig = errors.New("container config")

var envNameRE = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)

// envSources is what env resolution reads besides the pod.
type envSources struct {
	Objects       volume.Source // nil: every reference is missing
	PodIP, HostIP string
	NodeName      string
}

func (s envSources) configMap(ns, name string) (*api.ConfigMap, error) {
	if s.Objects == nil {
		return nil, fmt.Errorf("configmap %q: %w", name, volume.ErrNotFound)
	}
	return s.Objects.ConfigMap(ns, name)
}

func (s envSources) secret(ns, name string) (*api.Secret, error) {
	if s.Objects == nil {
		return nil, fmt.Errorf("secret %q: %w", name, volume.ErrNotFound)
	}
	return s.Objects.Secret(ns, name)
}

// missing turns a lookup error into a config error (when the object is
// missing and the reference not optional) or nil (optional).
func missing(err error, what string, optional *bool) error {
	if errors.Is(err, volume.ErrNotFound) {
		if optional != nil && *optional {
			return nil
		}
		return fmt.Errorf("%w: %s not found", errContainerConfig, what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// containerEnv resolves the environment of c: envFrom first, then env (which
// overrides), with $(VAR) references to earlier variables expanded, as
// Kubernetes does. The result is KEY=VALUE, one per key, in first-seen order.
func containerEnv(pod *api.Pod, c api.Container, src envSources) ([]string, error) {
	var order []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	for i, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := src.configMap(pod.Namespace, ef.ConfigMapRef.Name)
			if err != nil {
				if err := missing(err, fmt.Sprintf("configmap %q (envFrom[%d])", ef.ConfigMapRef.Name, i), ef.ConfigMapRef.Optional); err != nil {
					return nil, err
				}
				continue
			}
			for _, k := range sortedKeys(cm.Data) {
				if envNameRE.MatchString(ef.Prefix + k) {
					set(ef.Prefix+k, cm.Data[k])
				}
			}
		case ef.SecretRef != nil:
			s, err := src.secret(pod.Namespace, ef.SecretRef.Name)
			if err != nil {
				if err := missing(err, fmt.Sprintf("secret %q (envFrom[%d])", ef.SecretRef.Name, i), ef.SecretRef.Optional); err != nil {
					return nil, err
				}
				continue
			}
			for _, k := range sortedKeys(s.Data) {
				if envNameRE.MatchString(ef.Prefix + k) {
					set(ef.Prefix+k, string(s.Data[k]))
				}
			}
		}
	}
	lookup := func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expandVars(e.Value, lookup))
			continue
		}
		v, ok, err := envValueFrom(pod, e, src)
		if err != nil {
			return nil, err
		}
		if ok {
			set(e.Name, v)
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vals[k])
	}
	return out, nil
}

// envValueFrom resolves one valueFrom; ok is false for an optional
// reference that is missing (the variable is then not set).
func envValueFrom(pod *api.Pod, e api.EnvVar, src envSources) (string, bool, error) {
	vf := e.ValueFrom
	switch {
	case vf.ConfigMapKeyRef != nil:
		r := vf.ConfigMapKeyRef
		what := fmt.Sprintf("configmap %q key %q (env %s)", r.Name, r.Key, e.Name)
		cm, err := src.configMap(pod.Namespace, r.Name)
		if err != nil {
			return "", false, missing(err, what, r.Optional)
		}
		v, ok := cm.Data[r.Key]
		if !ok {
			if b, bok := cm.BinaryData[r.Key]; bok {
				return string(b), true, nil
			}
			return "", false, missing(volume.ErrNotFound, what, r.Optional)
		}
		return v, true, nil
	case vf.SecretKeyRef != nil:
		r := vf.SecretKeyRef
		what := fmt.Sprintf("secret %q key %q (env %s)", r.Name, r.Key, e.Name)
		s, err := src.secret(pod.Namespace, r.Name)
		if err != nil {
			return "", false, missing(err, what, r.Optional)
		}
		v, ok := s.Data[r.Key]
		if !ok {
			if sv, sok := s.StringData[r.Key]; sok {
				return sv, true, nil
			}
			return "", false, missing(volume.ErrNotFound, what, r.Optional)
		}
		return string(v), true, nil
	case vf.FieldRef != nil:
		v, err := podField(pod, vf.FieldRef.FieldPath, src)
		if err != nil {
			return "", false, fmt.Errorf("%w: env %s: %v", errContainerConfig, e.Name, err)
		}
		return v, true, nil
	}
	return "", false, fmt.Errorf("%w: env %s: valueFrom names no source", errContainerConfig, e.Name)
}

// podField is the downward API: the fields a fieldRef may name.
func podField(pod *api.Pod, path string, src envSources) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return pod.UID, nil
	case "spec.nodeName":
		if pod.Spec.NodeName != "" {
			return pod.Spec.NodeName, nil
		}
		return src.NodeName, nil
	case "status.podIP":
		return src.PodIP, nil
	case "status.hostIP":
		return src.HostIP, nil
	}
	for _, p := range []struct {
		prefix string
		m      map[string]string
	}{{"metadata.labels", pod.Labels}, {"metadata.annotations", pod.Annotations}} {
		if rest, ok := strings.CutPrefix(path, p.prefix+"['"); ok {
			if key, ok := strings.CutSuffix(rest, "']"); ok {
				return p.m[key], nil
			}
		}
	}
	return "", fmt.Errorf("fieldRef %q is not supported", path)
}

// expandVars replaces $(NAME) with the value of NAME when defined, leaves
// unknown references as they are, and turns $$ into $.
func expandVars(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteByte('$')
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// resourcesOf turns resources into cpu (limit, else request) in millicores
// and a memory limit in bytes.
func resourcesOf(r api.ResourceRequirements) (cpuMilli, memBytes int64, err error) {
	if q, ok := r.Limits["cpu"]; ok {
		cpuMilli, err = q.MilliValue()
	} else if q, ok := r.Requests["cpu"]; ok {
		cpuMilli, err = q.MilliValue()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("resources cpu: %w", err)
	}
	if q, ok := r.Limits["memory"]; ok {
		if memBytes, err = q.Value(); err != nil {
			return 0, 0, fmt.Errorf("resources.limits.memory: %w", err)
		}
	}
	return cpuMilli, memBytes, nil
}

// containerSpecFor builds the runtime spec of attempt of container c.
func containerSpecFor(pod *api.Pod, c api.Container, attempt int, netns, logDir string, env []string, mounts []volume.Mount) (runtime.ContainerSpec, error) {
	cpu, mem, err := resourcesOf(c.Resources)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	lookup := func(k string) (string, bool) {
		for _, kv := range env {
			if n, v, _ := strings.Cut(kv, "="); n == k {
				return v, true
			}
		}
		return "", false
	}
	expand := func(in []string) []string {
		if in == nil {
			return nil
		}
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = expandVars(s, lookup)
		}
		return out
	}
	hostname := pod.Spec.Hostname
	if hostname == "" {
		hostname = pod.Name
	}
	spec := runtime.ContainerSpec{
		ID: runtime.ContainerID(pod.UID, c.Name, attempt),
		Labels: map[string]string{
			runtime.LabelPodUID:        pod.UID,
			runtime.LabelPodName:       pod.Name,
			runtime.LabelPodNamespace:  pod.Namespace,
			runtime.LabelContainerName: c.Name,
			runtime.LabelAttempt:       strconv.Itoa(attempt),
		},
		Image:            c.Image,
		Command:          expand(c.Command),
		Args:             expand(c.Args),
		Env:              env,
		WorkingDir:       c.WorkingDir,
		CPUMilli:         cpu,
		MemoryLimitBytes: mem,
		NetNSPath:        netns,
		LogPath:          runtime.ContainerLogPath(logDir, pod.Namespace, pod.Name, pod.UID, c.Name, attempt),
		Hostname:         hostname,
		Stdin:            c.Stdin,
		StdinOnce:        c.StdinOnce,
		TTY:              c.TTY,
	}
	for _, m := range mounts {
		spec.Mounts = append(spec.Mounts, runtime.Mount{Source: m.Source, Destination: m.Destination, ReadOnly: m.ReadOnly})
	}
	return spec, nil
}
