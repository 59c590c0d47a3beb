package api

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
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
	// MaxSessionAffinityTimeoutSeconds bounds how long ClientIP affinity
	// lasts (one day).
	MaxSessionAffinityTimeoutSeconds = 86400
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
	trafficPolicies     = []string{TrafficPolicyCluster, TrafficPolicyLocal}
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
	case *Event:
		v.meta(o.GetObjectMeta(), true, nameDNSSubdomain)
		v.event(o)
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
