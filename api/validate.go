package api

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Limits checked by Validate.
const (
	// DNS1123SubdomainMaxLength bounds most object names.
	DNS1123SubdomainMaxLength = 253
	// DNS1123LabelMaxLength bounds names that become one DNS label:
	// namespaces, services, statefulsets, containers, volumes, ports.
	DNS1123LabelMaxLength = 63
	// IANAServiceNameMaxLength bounds named ports.
	IANAServiceNameMaxLength = 15
	// MaxAnnotationsBytes bounds the total size of an object's annotations.
	MaxAnnotationsBytes = 256 << 10
	// MaxConfigDataBytes bounds the data of one ConfigMap or Secret.
	MaxConfigDataBytes = 1 << 20
	// MaxConfigKeyLength bounds a ConfigMap or Secret key.
	MaxConfigKeyLength = 253
	// MinPort and MaxPort bound every port number.
	MinPort = 1
	MaxPort = 65535
	// MinNodePort and MaxNodePort bound a Service's nodePort.
	MinNodePort = 30000
	MaxNodePort = 32767
	// MaxSchedulingWeight bounds the weight of a preferred scheduling term.
	MaxSchedulingWeight = 100
)

var (
	dns1123LabelRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123SubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	dns1035LabelRE     = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	envVarNameRE       = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	configKeyRE        = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	ianaSvcNameRE      = regexp.MustCompile(`^[-a-z0-9]+$`)
	hasLetterRE        = regexp.MustCompile(`[a-z]`)
)

const (
	dns1123LabelMsg     = "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit"
	dns1123SubdomainMsg = "must be a DNS-1123 subdomain: dot-separated DNS-1123 labels of lower-case letters, digits and '-'"
	dns1035LabelMsg     = "must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit"
)

// Allowed values of enumerated fields, in the order error messages list them.
var (
	pullPolicies        = []string{PullAlways, PullIfNotPresent, PullNever}
	restartPolicies     = []string{RestartAlways, RestartOnFailure, RestartNever}
	protocols           = []string{ProtocolTCP, ProtocolUDP}
	serviceTypes        = []string{ServiceTypeClusterIP, ServiceTypeNodePort}
	sessionAffinities   = []string{ServiceAffinityClientIP, ServiceAffinityNone}
	deploymentStrategy  = []string{RecreateStrategy, RollingUpdateStrategy}
	setUpdateStrategies = []string{OnDeleteStrategy, RollingUpdateStrategy}
	podManagement       = []string{OrderedReadyPodManagement, ParallelPodManagement}
	selectorOperators   = []string{"DoesNotExist", "Exists", "In", "NotIn"}
	nodeOperators       = []string{"DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"}
	tolerationOperators = []string{"Equal", "Exists"}
	taintEffects        = []string{TaintNoExecute, TaintNoSchedule, TaintPreferNoSchedule}
	probeSchemes        = []string{"HTTP", "HTTPS"}
	dnsPolicies         = []string{"ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"}
	hostPathTypes       = []string{"", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"}
	accessModes         = []string{"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"}
	nodeRoles           = []string{RoleNonvoter, RoleVoter, RoleWorker}
)

// Validate checks an object against the rules of its kind and returns every
// problem found, sorted by path, or nil when it is valid. It expects an
// object that went through SetDefaults, but accepts empty values in the
// fields SetDefaults fills. Status is not checked.
func Validate(obj Object) FieldErrors {
	var v validator
	switch o := obj.(type) {
	case *Namespace:
		v.meta(o.GetObjectMeta(), false, nameDNSLabel)
	case *Node:
		v.meta(o.GetObjectMeta(), false, nameDNSSubdomain)
		v.nodeSpec(&o.Spec, "spec")
		if o.Status.Role != "" {
			v.enum("status.role", o.Status.Role, nodeRoles)
		}
	case *Pod:
		v.meta(o.GetObjectMeta(), true, nameDNSSubdomain)
		v.podSpec(&o.Spec, "spec", nil, false)
	case *ReplicaSet:
		v.meta(o.GetObjectMeta(), true, nameDNSSubdomain)
		v.replicas(o.Spec.Replicas, "spec.replicas")
		v.nonNegative("spec.minReadySeconds", int64(o.Spec.MinReadySeconds))
		v.workload(o.Spec.Selector, &o.Spec.Template, "spec", nil)
	case *Deployment:
		v.meta(o.GetObjectMeta(), true, nameDNSSubdomain)
		v.deployment(&o.Spec)
	case *DaemonSet:
		v.meta(o.GetObjectMeta(), true, nameDNSSubdomain)
		v.daemonSet(&o.Spec)
	case *StatefulSet:
		v.meta(o.GetObjectMeta(), true, nameDNSLabel)
		v.statefulSet(&o.Spec)
	case *Service:
		v.meta(o.GetObjectMeta(), true, nameDNS1035Label)
		v.serviceSpec(&o.Spec)
	case *Endpoints:
		v.meta(o.GetObjectMeta(), true, nameDNSSubdomain)
		v.endpoints(o.Subsets)
	case *ConfigMap:
		v.meta(o.GetObjectMeta(), true, nameDNSSubdomain)
		v.configMap(o)
	case *Secret:
		v.meta(o.GetObjectMeta(), true, nameDNSSubdomain)
		v.secret(o)
	default:
		return FieldErrors{Invalid("kind", KindOf(obj), "not a served kind")}
	}
	return v.errs.Sorted()
}

// ValidateUpdate checks newObj as Validate does and also that it does not
// change what may not change once oldObj exists: name and namespace, the
// selector of a workload, a Service's clusterIP, a StatefulSet's claim
// templates, service name and pod management policy, the data of an
// immutable ConfigMap or Secret, a Node's pod CIDR, and most of a Pod's
// spec.
func ValidateUpdate(newObj, oldObj Object) FieldErrors {
	if KindOf(newObj) != KindOf(oldObj) {
		return FieldErrors{Invalid("kind", KindOf(newObj), "may not change from "+KindOf(oldObj))}
	}
	v := validator{errs: Validate(newObj)}
	nm, om := newObj.GetObjectMeta(), oldObj.GetObjectMeta()
	v.immutable("metadata.name", nm.Name, om.Name)
	v.immutable("metadata.namespace", nm.Namespace, om.Namespace)
	if om.UID != "" {
		v.immutable("metadata.uid", nm.UID, om.UID)
	}
	switch n := newObj.(type) {
	case *ReplicaSet:
		v.immutable("spec.selector", n.Spec.Selector, oldObj.(*ReplicaSet).Spec.Selector)
	case *Deployment:
		v.immutable("spec.selector", n.Spec.Selector, oldObj.(*Deployment).Spec.Selector)
	case *DaemonSet:
		v.immutable("spec.selector", n.Spec.Selector, oldObj.(*DaemonSet).Spec.Selector)
	case *StatefulSet:
		o := oldObj.(*StatefulSet)
		v.immutable("spec.selector", n.Spec.Selector, o.Spec.Selector)
		v.immutable("spec.serviceName", n.Spec.ServiceName, o.Spec.ServiceName)
		v.immutable("spec.podManagementPolicy", n.Spec.PodManagementPolicy, o.Spec.PodManagementPolicy)
		if !sameJSON(n.Spec.VolumeClaimTemplates, o.Spec.VolumeClaimTemplates) {
			v.add(Forbidden("spec.volumeClaimTemplates", "field is immutable"))
		}
	case *Service:
		o := oldObj.(*Service)
		if o.Spec.ClusterIP != "" {
			v.immutable("spec.clusterIP", n.Spec.ClusterIP, o.Spec.ClusterIP)
		}
	case *ConfigMap:
		o := oldObj.(*ConfigMap)
		if isTrue(o.Immutable) {
			if !isTrue(n.Immutable) {
				v.add(Forbidden("immutable", "may not be unset once set"))
			}
			if !sameJSON(n.Data, o.Data) {
				v.add(Forbidden("data", "field is immutable when `immutable` is set"))
			}
			if !sameJSON(n.BinaryData, o.BinaryData) {
				v.add(Forbidden("binaryData", "field is immutable when `immutable` is set"))
			}
		}
	case *Secret:
		o := oldObj.(*Secret)
		v.immutable("type", n.Type, o.Type)
		if isTrue(o.Immutable) {
			if !isTrue(n.Immutable) {
				v.add(Forbidden("immutable", "may not be unset once set"))
			}
			if !sameJSON(n.Data, o.Data) || len(n.StringData) > 0 {
				v.add(Forbidden("data", "field is immutable when `immutable` is set"))
			}
		}
	case *Node:
		o := oldObj.(*Node)
		if o.Spec.PodCIDR != "" {
			v.immutable("spec.podCIDR", n.Spec.PodCIDR, o.Spec.PodCIDR)
		}
	case *Pod:
		v.podUpdate(&n.Spec, &oldObj.(*Pod).Spec)
	}
	return v.errs.Sorted()
}

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

type validator struct {
	errs FieldErrors
}

func (v *validator) add(e FieldError) { v.errs = append(v.errs, e) }

func (v *validator) immutable(p string, n, o any) {
	if !sameJSON(n, o) {
		v.add(Invalid(p, n, "field is immutable"))
	}
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func isTrue(b *bool) bool { return b != nil && *b }

// enum checks that s is one of allowed; the empty string is left to the
// caller (most enums have a default).
func (v *validator) enum(p path, s string, allowed []string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	v.add(NotSupported(p.String(), s, allowed))
	return false
}

// optEnum is enum for a field SetDefaults fills: empty is fine.
func (v *validator) optEnum(p path, s string, allowed []string) {
	if s != "" {
		v.enum(p, s, allowed)
	}
}

func (v *validator) nonNegative(p path, n int64) {
	if n < 0 {
		v.add(Invalid(p.String(), n, "must be greater than or equal to 0"))
	}
}

func (v *validator) replicas(r *int32, p path) {
	if r != nil {
		v.nonNegative(p, int64(*r))
	}
}

// listedPortName checks the name of one port (at pp) of a list of n:
// required when there are several, a DNS label, unique among names (which it
// adds to).
func (v *validator) listedPortName(pp path, name string, n int, names map[string]bool) {
	switch {
	case name == "" && n > 1:
		v.add(Required(pp.child("name").String(), "each port needs a name when there are several"))
	case name != "":
		nameDNSLabel(v, pp.child("name"), name)
		if names[name] {
			v.add(Duplicate(pp.child("name").String(), name))
		}
		names[name] = true
	}
}

func (v *validator) port(p path, n int32) {
	if n < MinPort || n > MaxPort {
		v.add(Invalid(p.String(), n, fmt.Sprintf("must be between %d and %d, inclusive", MinPort, MaxPort)))
	}
}

// Name checks. Each reports at most one error: too long, else malformed.

type nameCheck func(v *validator, p path, s string)

func nameDNSLabel(v *validator, p path, s string) {
	v.format(p, s, DNS1123LabelMaxLength, dns1123LabelRE, dns1123LabelMsg)
}

func nameDNSSubdomain(v *validator, p path, s string) {
	v.format(p, s, DNS1123SubdomainMaxLength, dns1123SubdomainRE, dns1123SubdomainMsg)
}

func nameDNS1035Label(v *validator, p path, s string) {
	v.format(p, s, DNS1123LabelMaxLength, dns1035LabelRE, dns1035LabelMsg)
}

func (v *validator) format(p path, s string, max int, re *regexp.Regexp, msg string) bool {
	if len(s) > max {
		v.add(TooLong(p.String(), max, "characters"))
		return false
	}
	if !re.MatchString(s) {
		v.add(Invalid(p.String(), s, msg))
		return false
	}
	return true
}

// requiredName checks a name that must be present.
func (v *validator) requiredName(p path, s string, check nameCheck) {
	if s == "" {
		v.add(Required(p.String(), ""))
		return
	}
	check(v, p, s)
}

// portName checks an IANA service name as used for named ports.
func (v *validator) portName(p path, s string) bool {
	switch {
	case len(s) > IANAServiceNameMaxLength:
		v.add(TooLong(p.String(), IANAServiceNameMaxLength, "characters"))
	case !ianaSvcNameRE.MatchString(s), !hasLetterRE.MatchString(s),
		strings.HasPrefix(s, "-"), strings.HasSuffix(s, "-"), strings.Contains(s, "--"):
		v.add(Invalid(p.String(), s, "must be an IANA service name: lower-case letters, digits and single '-' between them, with at least one letter"))
	default:
		return true
	}
	return false
}

// Label keys and values use the checks of selector.go.

func (v *validator) labelKey(p path, k string) {
	if err := ValidateLabelKey(k); err != nil {
		v.add(Invalid(p.String(), k, err.Error()))
	}
}

func (v *validator) labelValue(p path, val string) {
	if err := ValidateLabelValue(val); err != nil {
		v.add(Invalid(p.String(), val, err.Error()))
	}
}

func (v *validator) labels(p path, m map[string]string) {
	for _, k := range sortedKeys(m) {
		v.labelKey(p.key(k), k)
		v.labelValue(p.key(k), m[k])
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// meta checks the metadata of a top-level object.
func (v *validator) meta(m *ObjectMeta, namespaced bool, check nameCheck) {
	p := path("metadata")
	switch {
	case m.Name != "":
		check(v, p.child("name"), m.Name)
	case m.GenerateName != "":
		// A prefix: it must become a valid name once a suffix is added.
		check(v, p.child("generateName"), m.GenerateName+"x")
	default:
		v.add(Required("metadata.name", "name or generateName is required"))
	}
	if namespaced {
		if m.Namespace == "" {
			v.add(Required("metadata.namespace", ""))
		} else {
			nameDNSLabel(v, p.child("namespace"), m.Namespace)
		}
	} else if m.Namespace != "" {
		v.add(Forbidden("metadata.namespace", "not allowed on a cluster-scoped object"))
	}
	v.objectMetaCommon(p, m)
	for i, r := range m.OwnerReferences {
		rp := p.child("ownerReferences").index(i)
		for _, f := range []struct{ name, val string }{{"apiVersion", r.APIVersion}, {"kind", r.Kind}, {"name", r.Name}, {"uid", r.UID}} {
			if f.val == "" {
				v.add(Required(rp.child(f.name).String(), ""))
			}
		}
	}
	if m.Generation < 0 {
		v.nonNegative(p.child("generation"), m.Generation)
	}
}

// objectMetaCommon checks labels and annotations, for objects and templates.
func (v *validator) objectMetaCommon(p path, m *ObjectMeta) {
	v.labels(p.child("labels"), m.Labels)
	total := 0
	for _, k := range sortedKeys(m.Annotations) {
		v.labelKey(p.child("annotations").key(k), k)
		total += len(k) + len(m.Annotations[k])
	}
	if total > MaxAnnotationsBytes {
		v.add(TooLong(p.child("annotations").String(), MaxAnnotationsBytes, "bytes in total"))
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

func (v *validator) serviceSpec(s *ServiceSpec) {
	p := path("spec")
	v.optEnum(p.child("type"), s.Type, serviceTypes)
	v.optEnum(p.child("sessionAffinity"), s.SessionAffinity, sessionAffinities)
	v.labels(p.child("selector"), s.Selector)
	headless := s.ClusterIP == ClusterIPNone
	if s.ClusterIP != "" && !headless {
		v.ipv4(p.child("clusterIP"), s.ClusterIP, `must be an IPv4 address or "None"`)
	}
	for i, ip := range s.ClusterIPs {
		ipp := p.child("clusterIPs").index(i)
		if ip != ClusterIPNone {
			v.ipv4(ipp, ip, `must be an IPv4 address or "None"`)
		}
		if i == 0 && s.ClusterIP != "" && ip != s.ClusterIP {
			v.add(Invalid(ipp.String(), ip, "must match spec.clusterIP"))
		}
	}
	if headless && s.Type == ServiceTypeNodePort {
		v.add(Invalid(p.child("clusterIP").String(), s.ClusterIP, "may not be None for a NodePort service"))
	}
	if len(s.Ports) == 0 && !headless {
		v.add(Required(p.child("ports").String(), "a service needs at least one port unless clusterIP is None"))
	}
	names := map[string]bool{}
	nodePorts := map[string]bool{}
	for i, sp := range s.Ports {
		pp := p.child("ports").index(i)
		v.listedPortName(pp, sp.Name, len(s.Ports), names)
		v.port(pp.child("port"), sp.Port)
		v.optEnum(pp.child("protocol"), sp.Protocol, protocols)
		if sp.TargetPort != (IntOrString{}) {
			v.portOrName(pp.child("targetPort"), sp.TargetPort)
		}
		if sp.NodePort != 0 {
			np := pp.child("nodePort")
			switch {
			case s.Type != ServiceTypeNodePort:
				v.add(Forbidden(np.String(), "may only be set when type is NodePort"))
			case sp.NodePort < MinNodePort || sp.NodePort > MaxNodePort:
				v.add(Invalid(np.String(), sp.NodePort, fmt.Sprintf("must be between %d and %d, inclusive", MinNodePort, MaxNodePort)))
			}
			key := fmt.Sprintf("%d/%s", sp.NodePort, sp.Protocol)
			if nodePorts[key] {
				v.add(Duplicate(np.String(), sp.NodePort))
			}
			nodePorts[key] = true
		}
	}
}

func (v *validator) ipv4(p path, s, msg string) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		v.add(Invalid(p.String(), s, msg))
	}
}

func (v *validator) endpoints(subsets []EndpointSubset) {
	for i, ss := range subsets {
		sp := path("subsets").index(i)
		for _, list := range []struct {
			name  string
			addrs []EndpointAddress
		}{{"addresses", ss.Addresses}, {"notReadyAddresses", ss.NotReadyAddresses}} {
			for j, a := range list.addrs {
				ap := sp.child(list.name).index(j)
				if a.IP == "" {
					v.add(Required(ap.child("ip").String(), ""))
				} else if _, err := netip.ParseAddr(a.IP); err != nil {
					v.add(Invalid(ap.child("ip").String(), a.IP, "must be an IP address"))
				}
				if a.Hostname != "" {
					nameDNSLabel(v, ap.child("hostname"), a.Hostname)
				}
			}
		}
		names := map[string]bool{}
		for j, port := range ss.Ports {
			pp := sp.child("ports").index(j)
			v.listedPortName(pp, port.Name, len(ss.Ports), names)
			v.port(pp.child("port"), port.Port)
			v.optEnum(pp.child("protocol"), port.Protocol, protocols)
		}
	}
}

func (v *validator) configKey(p path, k string) {
	switch {
	case len(k) > MaxConfigKeyLength:
		v.add(TooLong(p.String(), MaxConfigKeyLength, "characters"))
	case !configKeyRE.MatchString(k):
		v.add(Invalid(p.String(), k, "must consist of letters, digits, '-', '_' and '.'"))
	case k == "." || k == ".." || strings.HasPrefix(k, ".."):
		v.add(Invalid(p.String(), k, "must not be '.' or start with '..'"))
	}
}

func (v *validator) configMap(c *ConfigMap) {
	total := 0
	for _, k := range sortedKeys(c.Data) {
		v.configKey(path("data").key(k), k)
		total += len(c.Data[k])
	}
	for _, k := range sortedKeys(c.BinaryData) {
		kp := path("binaryData").key(k)
		v.configKey(kp, k)
		if _, dup := c.Data[k]; dup {
			v.add(Duplicate(kp.String(), k))
		}
		total += len(c.BinaryData[k])
	}
	if total > MaxConfigDataBytes {
		v.add(TooLong("data", MaxConfigDataBytes, "bytes in total"))
	}
}

func (v *validator) secret(s *Secret) {
	total := 0
	for _, k := range sortedKeys(s.Data) {
		v.configKey(path("data").key(k), k)
		total += len(s.Data[k])
	}
	for _, k := range sortedKeys(s.StringData) {
		v.configKey(path("stringData").key(k), k)
		if _, merged := s.Data[k]; !merged {
			total += len(s.StringData[k])
		}
	}
	if total > MaxConfigDataBytes {
		v.add(TooLong("data", MaxConfigDataBytes, "bytes in total"))
	}
	if len(s.Type) > DNS1123SubdomainMaxLength {
		v.add(TooLong("type", DNS1123SubdomainMaxLength, "characters"))
	}
}

func (v *validator) nodeSpec(s *NodeSpec, p path) {
	if s.PodCIDR != "" {
		if _, err := netip.ParsePrefix(s.PodCIDR); err != nil {
			v.add(Invalid(p.child("podCIDR").String(), s.PodCIDR, "must be a CIDR such as 10.244.1.0/24"))
		}
	}
	for i, c := range s.PodCIDRs {
		if _, err := netip.ParsePrefix(c); err != nil {
			v.add(Invalid(p.child("podCIDRs").index(i).String(), c, "must be a CIDR such as 10.244.1.0/24"))
		}
	}
	seen := map[string]bool{}
	for i, t := range s.Taints {
		tp := p.child("taints").index(i)
		if t.Key == "" {
			v.add(Required(tp.child("key").String(), ""))
		} else {
			v.labelKey(tp.child("key"), t.Key)
		}
		if t.Value != "" {
			v.labelValue(tp.child("value"), t.Value)
		}
		if t.Effect == "" {
			v.add(Required(tp.child("effect").String(), ""))
		} else {
			v.enum(tp.child("effect"), t.Effect, taintEffects)
		}
		if seen[t.Key+"\x00"+t.Effect] {
			v.add(Duplicate(tp.String(), t.Key+":"+t.Effect))
		}
		seen[t.Key+"\x00"+t.Effect] = true
	}
}
