package api

// Event is a record of something that happened to an object, as core/v1
// Events are in Kubernetes: who wrote it (source, reportingComponent), about
// what (involvedObject), why (reason, a short UpperCamelCase word) and a
// human-readable message. Repeats of the same event are folded into one
// object: count says how many times it happened, between firstTimestamp and
// lastTimestamp. Events are kept one hour after their lastTimestamp.
type Event struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	// InvolvedObject is the object this event is about.
	InvolvedObject ObjectReference `json:"involvedObject"`
	// Reason is a short, machine-readable word saying why: Scheduled,
	// FailedScheduling, Pulling, BackOff...
	Reason string `json:"reason,omitempty"`
	// Message is a human-readable description of what happened.
	Message string `json:"message,omitempty"`
	// Source names the component and host that reported the event.
	Source EventSource `json:"source,omitzero"`
	// FirstTimestamp is when the event was first recorded.
	FirstTimestamp Time `json:"firstTimestamp,omitzero"`
	// LastTimestamp is when the event was last recorded.
	LastTimestamp Time `json:"lastTimestamp,omitzero"`
	// Count is how many times the event happened.
	Count int32 `json:"count,omitempty"`
	// Type is Normal or Warning.
	Type string `json:"type,omitempty"`
	// EventTime is when the event was first observed, in the newer
	// events API's form; Shoal writes firstTimestamp and lastTimestamp.
	EventTime *Time `json:"eventTime,omitempty"`
	// ReportingComponent names the controller that emitted the event,
	// e.g. shoal/scheduler.
	ReportingComponent string `json:"reportingComponent,omitempty"`
	// ReportingInstance names the instance of that controller: the node
	// it ran on.
	ReportingInstance string `json:"reportingInstance,omitempty"`
}

// ObjectReference points at one object: enough to find it (kind,
// namespace, name) and to tell it from a later one of the same name (uid).
type ObjectReference struct {
	// Kind of the referent: Pod, Node, ReplicaSet...
	Kind string `json:"kind,omitempty"`
	// Namespace of the referent; empty for a cluster-scoped one.
	Namespace string `json:"namespace,omitempty"`
	// Name of the referent.
	Name string `json:"name,omitempty"`
	// UID of the referent. Events about a Node carry the node's name here,
	// as Kubernetes' kubelet does, so that kubectl describe node finds them.
	UID string `json:"uid,omitempty"`
	// APIVersion of the referent.
	APIVersion string `json:"apiVersion,omitempty"`
	// ResourceVersion of the referent the event was about, if known.
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// FieldPath names a part of the referent: spec.containers{web} for
	// one container of a pod.
	FieldPath string `json:"fieldPath,omitempty"`
}

// EventSource names who reported an event.
type EventSource struct {
	// Component that reported the event: scheduler, kubelet...
	Component string `json:"component,omitempty"`
	// Host (node name) the component ran on.
	Host string `json:"host,omitempty"`
}

// Event types.
const (
	EventTypeNormal  = "Normal"
	EventTypeWarning = "Warning"
)

// Limits checked by Validate on Events.
const (
	// MaxEventReasonLength bounds an Event's reason.
	MaxEventReasonLength = 128
	// MaxEventMessageLength bounds an Event's message; a recorder cuts a
	// longer one down to this.
	MaxEventMessageLength = 1024
	// MaxEventComponentLength bounds source.component, source.host,
	// reportingComponent and reportingInstance.
	MaxEventComponentLength = 128
	// MaxEventFieldPathLength bounds involvedObject.fieldPath.
	MaxEventFieldPathLength = 256
)

var eventTypes = []string{EventTypeNormal, EventTypeWarning}

// RefTo returns a reference to obj for an Event. A Node's reference carries
// its name as uid (see ObjectReference.UID).
func RefTo(obj Object) ObjectReference {
	m := obj.GetObjectMeta()
	kind := KindOf(obj)
	r := ObjectReference{Kind: kind, Namespace: m.Namespace, Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion}
	if k, ok := LookupKind(kind); ok {
		r.APIVersion = k.APIVersion()
	}
	if kind == "Node" {
		r.UID = m.Name
	}
	return r
}

// NodeRef is the reference Events about the node name carry.
func NodeRef(name string) ObjectReference {
	return ObjectReference{Kind: "Node", Name: name, UID: name, APIVersion: "v1"}
}

// EventNamespace is the namespace an Event about ref lives in: the
// object's own, or default for a cluster-scoped object.
func EventNamespace(ref ObjectReference) string {
	if ref.Namespace != "" {
		return ref.Namespace
	}
	return "default"
}
