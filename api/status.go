package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// This file holds the wire shapes of the HTTP API that are not objects
// (Status, lists, watch events, delete options) and the error type the
// server and the client share.

// StatusReason says why a request failed, in a form a program can switch on.
// The values are spelled as Kubernetes spells them.
type StatusReason string

const (
	ReasonBadRequest            StatusReason = "BadRequest"
	ReasonNotFound              StatusReason = "NotFound"
	ReasonMethodNotAllowed      StatusReason = "MethodNotAllowed"
	ReasonAlreadyExists         StatusReason = "AlreadyExists"
	ReasonConflict              StatusReason = "Conflict"
	ReasonExpired               StatusReason = "Expired"
	ReasonGone                  StatusReason = "Gone"
	ReasonRequestEntityTooLarge StatusReason = "RequestEntityTooLarge"
	ReasonUnsupportedMediaType  StatusReason = "UnsupportedMediaType"
	ReasonInvalid               StatusReason = "Invalid"
	ReasonInternalError         StatusReason = "InternalError"
	ReasonServiceUnavailable    StatusReason = "ServiceUnavailable"
	ReasonTimeout               StatusReason = "Timeout"
)

const (
	StatusSuccess = "Success"
	StatusFailure = "Failure"
)

// ListMeta is the metadata of a list: the store revision it was read at.
type ListMeta struct {
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// Status is the body of every error response, and of ERROR watch events.
type Status struct {
	TypeMeta `json:",inline"`
	ListMeta `json:"metadata"`
	Status   string         `json:"status,omitempty"` // Success or Failure
	Message  string         `json:"message,omitempty"`
	Reason   StatusReason   `json:"reason,omitempty"`
	Details  *StatusDetails `json:"details,omitempty"`
	Code     int32          `json:"code,omitempty"`
}

// StatusDetails names the object a failure is about and, for Invalid, the
// fields at fault.
type StatusDetails struct {
	Name   string        `json:"name,omitempty"`
	Group  string        `json:"group,omitempty"`
	Kind   string        `json:"kind,omitempty"`
	Causes []StatusCause `json:"causes,omitempty"`
}

// StatusCause is one field-level reason for a failure.
type StatusCause struct {
	Type    string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Field   string `json:"field,omitempty"`
}

// ObjectList is the wire shape of a list response; Items are decoded by the
// caller into the kind's Go type.
type ObjectList struct {
	TypeMeta `json:",inline"`
	ListMeta `json:"metadata"`
	Items    []json.RawMessage `json:"items"`
}

// WatchEventWire is one line of a watch stream.
type WatchEventWire struct {
	Type   string          `json:"type"` // ADDED, MODIFIED, DELETED, ERROR
	Object json.RawMessage `json:"object"`
}

// WatchEventError is the type of the watch event that ends a stream with a Status.
const WatchEventError = "ERROR"

// DeleteOptions is the optional body of a DELETE.
type DeleteOptions struct {
	TypeMeta `json:",inline"`
	// GracePeriodSeconds is how long a pod bound to a node gets to stop
	// before its object goes: nil means the pod's
	// spec.terminationGracePeriodSeconds, 0 removes the object at once
	// (force). Other kinds are always removed at once.
	GracePeriodSeconds *int64         `json:"gracePeriodSeconds,omitempty"`
	Preconditions      *Preconditions `json:"preconditions,omitempty"`
	// PropagationPolicy says what becomes of the objects the deleted one
	// owns: Background (the default) and Foreground let garbage
	// collection delete them; Orphan removes their ownerReferences to it.
	PropagationPolicy *string `json:"propagationPolicy,omitempty"`
	// OrphanDependents is the older form of PropagationPolicy: true is
	// Orphan, false Background.
	OrphanDependents *bool `json:"orphanDependents,omitempty"`
	// DryRun ["All"] checks the deletion without doing it.
	DryRun []string `json:"dryRun,omitempty"`
}

// Values of DeleteOptions.PropagationPolicy.
const (
	DeletePropagationOrphan     = "Orphan"
	DeletePropagationBackground = "Background"
	DeletePropagationForeground = "Foreground"
)

// Preconditions must hold for a delete to go ahead.
type Preconditions struct {
	ResourceVersion *string `json:"resourceVersion,omitempty"`
	UID             *string `json:"uid,omitempty"`
}

// StatusError is an error that carries a Status: the server builds one for
// every failed request, and the client returns one for every non-2xx answer.
type StatusError struct {
	ErrStatus Status
}

func (e *StatusError) Error() string {
	if e.ErrStatus.Message != "" {
		return e.ErrStatus.Message
	}
	return fmt.Sprintf("%s (HTTP %d)", e.ErrStatus.Reason, e.ErrStatus.Code)
}

// Code is the HTTP status code.
func (e *StatusError) Code() int { return int(e.ErrStatus.Code) }

// Reason is the machine-readable reason.
func (e *StatusError) Reason() StatusReason { return e.ErrStatus.Reason }

// Status returns the Status to send, with its type meta filled.
func (e *StatusError) Status() Status {
	s := e.ErrStatus
	s.Kind, s.APIVersion = "Status", "v1"
	if s.Status == "" {
		s.Status = StatusFailure
	}
	return s
}

// NewStatusError builds a StatusError. details may be nil.
func NewStatusError(code int, reason StatusReason, details *StatusDetails, format string, args ...any) *StatusError {
	return &StatusError{ErrStatus: Status{
		TypeMeta: TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   StatusFailure,
		Message:  fmt.Sprintf(format, args...),
		Reason:   reason,
		Details:  details,
		Code:     int32(code),
	}}
}

// qualifiedResource is "pods" or "deployments.apps", as error messages name a resource.
func qualifiedResource(k KindInfo) string {
	if k.Group == "" {
		return k.Resource
	}
	return k.Resource + "." + k.Group
}

// qualifiedKind is "Pod" or "Deployment.apps".
func qualifiedKind(k KindInfo) string {
	if k.Group == "" {
		return k.Kind
	}
	return k.Kind + "." + k.Group
}

func detailsFor(k KindInfo, name string) *StatusDetails {
	return &StatusDetails{Name: name, Group: k.Group, Kind: k.Kind}
}

// NewNotFound: `pods "web" not found`.
func NewNotFound(k KindInfo, name string) *StatusError {
	return NewStatusError(http.StatusNotFound, ReasonNotFound, detailsFor(k, name),
		"%s %q not found", qualifiedResource(k), name)
}

// NewAlreadyExists: `pods "web" already exists`.
func NewAlreadyExists(k KindInfo, name string) *StatusError {
	return NewStatusError(http.StatusConflict, ReasonAlreadyExists, detailsFor(k, name),
		"%s %q already exists", qualifiedResource(k), name)
}

// NewConflict: the object changed since the caller read it.
func NewConflict(k KindInfo, name, why string) *StatusError {
	return NewStatusError(http.StatusConflict, ReasonConflict, detailsFor(k, name),
		"Operation cannot be fulfilled on %s %q: %s", qualifiedResource(k), name, why)
}

// NewInvalid: `Deployment.apps "web" is invalid: <causes joined>`.
func NewInvalid(k KindInfo, name string, causes []StatusCause) *StatusError {
	d := detailsFor(k, name)
	d.Causes = causes
	parts := make([]string, 0, len(causes))
	for _, c := range causes {
		if c.Field != "" {
			parts = append(parts, c.Field+": "+c.Message)
		} else {
			parts = append(parts, c.Message)
		}
	}
	msg := strings.Join(parts, "; ")
	if len(parts) > 1 {
		msg = "[" + msg + "]"
	}
	return NewStatusError(http.StatusUnprocessableEntity, ReasonInvalid, d,
		"%s %q is invalid: %s", qualifiedKind(k), name, msg)
}

// NewBadRequest: malformed input that no retry will fix.
func NewBadRequest(format string, args ...any) *StatusError {
	return NewStatusError(http.StatusBadRequest, ReasonBadRequest, nil, format, args...)
}

// NewGone: a watch asked for history the server no longer keeps.
func NewGone(message string) *StatusError {
	return NewStatusError(http.StatusGone, ReasonExpired, nil, "%s", message)
}

// NewServiceUnavailable: no leader, or not the leader: the request was
// certainly not applied, and a retry is safe (the server adds
// Retry-After).
func NewServiceUnavailable(message string) *StatusError {
	return NewStatusError(http.StatusServiceUnavailable, ReasonServiceUnavailable, nil, "%s", message)
}

// NewTimeout: a write whose outcome is unknown (it may have been applied:
// the proposal timed out, leadership was lost while it committed, or the
// leader stopped answering after it was sent). 504 with reason Timeout and
// no Retry-After, as Kubernetes answers: read before writing again.
func NewTimeout(message string) *StatusError {
	return NewStatusError(http.StatusGatewayTimeout, ReasonTimeout, nil, "%s", message)
}

// NewInternalError wraps an unexpected server error.
func NewInternalError(err error) *StatusError {
	return NewStatusError(http.StatusInternalServerError, ReasonInternalError, nil,
		"Internal error occurred: %v", err)
}

// ReasonForError returns the reason of a StatusError anywhere in err's chain,
// or "" for other errors.
func ReasonForError(err error) StatusReason {
	var se *StatusError
	if errors.As(err, &se) {
		return se.ErrStatus.Reason
	}
	return ""
}

func codeForError(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return int(se.ErrStatus.Code)
	}
	return 0
}

// IsNotFound reports a 404.
func IsNotFound(err error) bool {
	return ReasonForError(err) == ReasonNotFound || codeForError(err) == http.StatusNotFound
}

// IsAlreadyExists reports a create that named an existing object.
func IsAlreadyExists(err error) bool { return ReasonForError(err) == ReasonAlreadyExists }

// IsConflict reports a stale resourceVersion (or any other 409 but AlreadyExists).
func IsConflict(err error) bool {
	r := ReasonForError(err)
	return r == ReasonConflict || (codeForError(err) == http.StatusConflict && r != ReasonAlreadyExists)
}

// IsGone reports a watch whose resourceVersion is older than the kept history.
func IsGone(err error) bool {
	r := ReasonForError(err)
	return r == ReasonExpired || r == ReasonGone || codeForError(err) == http.StatusGone
}

// IsInvalid reports a request that failed validation (422).
func IsInvalid(err error) bool { return ReasonForError(err) == ReasonInvalid }

// IsServiceUnavailable reports a 503.
func IsServiceUnavailable(err error) bool {
	return codeForError(err) == http.StatusServiceUnavailable
}
