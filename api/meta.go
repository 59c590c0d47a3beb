package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// TypeMeta names the schema of an object: apiVersion and kind, as in a
// Kubernetes manifest.
type TypeMeta struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
}

// ObjectMeta is the metadata every stored object carries. The server owns
// uid, resourceVersion, generation, creationTimestamp and the deletion
// fields: deletionTimestamp and deletionGracePeriodSeconds, the grace period
// the deletion that set deletionTimestamp granted.
type ObjectMeta struct {
	Name                       string            `json:"name,omitempty"`
	GenerateName               string            `json:"generateName,omitempty"`
	Namespace                  string            `json:"namespace,omitempty"`
	UID                        string            `json:"uid,omitempty"`
	ResourceVersion            string            `json:"resourceVersion,omitempty"`
	Generation                 int64             `json:"generation,omitempty"`
	CreationTimestamp          Time              `json:"creationTimestamp,omitzero"`
	DeletionTimestamp          *Time             `json:"deletionTimestamp,omitempty"`
	DeletionGracePeriodSeconds *int64            `json:"deletionGracePeriodSeconds,omitempty"`
	Labels                     map[string]string `json:"labels,omitempty"`
	Annotations                map[string]string `json:"annotations,omitempty"`
	OwnerReferences            []OwnerReference  `json:"ownerReferences,omitempty"`
	Finalizers                 []string          `json:"finalizers,omitempty"`
}

// OwnerReference points from a dependent object to the object that owns it;
// deleting the owner deletes its dependents.
type OwnerReference struct {
	APIVersion         string `json:"apiVersion"`
	Kind               string `json:"kind"`
	Name               string `json:"name"`
	UID                string `json:"uid"`
	Controller         *bool  `json:"controller,omitempty"`
	BlockOwnerDeletion *bool  `json:"blockOwnerDeletion,omitempty"`
}

// Object is implemented by every kind. Objects handed out by the store are
// shared and read-only: call DeepCopyObject before changing one.
type Object interface {
	GetTypeMeta() *TypeMeta
	GetObjectMeta() *ObjectMeta
	DeepCopyObject() Object
}

func (t *TypeMeta) GetTypeMeta() *TypeMeta       { return t }
func (m *ObjectMeta) GetObjectMeta() *ObjectMeta { return m }

// ResourceVersionInt parses metadata.resourceVersion; an empty one is 0.
func (m *ObjectMeta) ResourceVersionInt() (int64, error) {
	if m.ResourceVersion == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(m.ResourceVersion, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("metadata.resourceVersion: %q is not a non-negative integer", m.ResourceVersion)
	}
	return v, nil
}

// ControllerOf returns the owner reference marked controller, or nil.
func ControllerOf(m *ObjectMeta) *OwnerReference {
	for i := range m.OwnerReferences {
		if c := m.OwnerReferences[i].Controller; c != nil && *c {
			return &m.OwnerReferences[i]
		}
	}
	return nil
}

// Time is a timestamp that encodes as RFC 3339 with second precision, the
// way Kubernetes writes metadata times. The zero Time encodes as null.
type Time struct {
	time.Time
}

// NewTime truncates t to seconds, as it will be after a round trip.
func NewTime(t time.Time) Time { return Time{t.UTC().Truncate(time.Second)} }

// ErrTimeRange is the error for a time whose year, in UTC, RFC 3339 cannot
// write (0 to 9999).
var ErrTimeRange = errors.New("year outside 0-9999 (in UTC), which RFC 3339 cannot write")

func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	// Refused here rather than written: "10000-01-01T00:00:00Z" would be
	// refused by UnmarshalJSON, on every replica that applies the entry.
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("time %s: %w", t.UTC().Format(time.RFC3339), ErrTimeRange)
	}
	// An RFC 3339 time in UTC has nothing JSON escapes: quoted as is,
	// without a pass through json.Marshal (every status write carries
	// several of these).
	b := make([]byte, 0, len(`"2006-01-02T15:04:05Z"`))
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339)
	return append(b, '"'), nil
}

func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		s = string(b[1 : len(b)-1]) // nothing to unescape
	} else if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("expected an RFC 3339 time string")
	}
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	p, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("invalid RFC 3339 time %q", s)
	}
	if y := p.UTC().Year(); y < 0 || y > 9999 {
		// "9999-12-31T23:59:59-01:00" parses, but is in year 10000 in UTC.
		return fmt.Errorf("time %q: %w", s, ErrTimeRange)
	}
	t.Time = p.UTC()
	return nil
}

// DeepCopy copies a pointer to Time.
func (t *Time) DeepCopy() *Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// LabelSelector selects objects by labels: every matchLabels pair and every
// expression must hold. An empty selector matches everything.
type LabelSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// LabelSelectorRequirement is one expression of a LabelSelector.
type LabelSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"` // In, NotIn, Exists, DoesNotExist
	Values   []string `json:"values,omitempty"`
}

// Condition is the shape shared by every kind's status conditions.
type Condition struct {
	Type               string `json:"type"`
	Status             string `json:"status"` // True, False, Unknown
	LastProbeTime      Time   `json:"lastProbeTime,omitzero"`
	LastUpdateTime     Time   `json:"lastUpdateTime,omitzero"`
	LastTransitionTime Time   `json:"lastTransitionTime,omitzero"`
	Reason             string `json:"reason,omitempty"`
	Message            string `json:"message,omitempty"`
}

const (
	ConditionTrue    = "True"
	ConditionFalse   = "False"
	ConditionUnknown = "Unknown"
)

// FindCondition returns the condition of the given type, or nil.
func FindCondition(conds []Condition, typ string) *Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// IntOrString holds a value that a manifest may write as a number or a
// string, such as a port name or a percentage ("25%").
type IntOrString struct {
	IsString bool
	IntVal   int32
	StrVal   string
}

func FromInt(i int32) IntOrString     { return IntOrString{IntVal: i} }
func FromString(s string) IntOrString { return IntOrString{IsString: true, StrVal: s} }

func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.IsString {
		return json.Marshal(v.StrVal)
	}
	return json.Marshal(v.IntVal)
}

func (v *IntOrString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		v.IsString = true
		v.IntVal = 0
		return json.Unmarshal(b, &v.StrVal)
	}
	v.IsString = false
	v.StrVal = ""
	if err := json.Unmarshal(b, &v.IntVal); err != nil {
		return fmt.Errorf("expected an integer or a string")
	}
	return nil
}

func (v IntOrString) String() string {
	if v.IsString {
		return v.StrVal
	}
	return strconv.Itoa(int(v.IntVal))
}

// ScaledValue resolves v against total: an integer is itself, "N%" is N
// percent of total rounded up (roundUp) or down.
func (v IntOrString) ScaledValue(total int, roundUp bool) (int, error) {
	if !v.IsString {
		return int(v.IntVal), nil
	}
	s := v.StrVal
	if len(s) < 2 || s[len(s)-1] != '%' {
		return 0, fmt.Errorf("%q is neither an integer nor a percentage", s)
	}
	p, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || p < 0 {
		return 0, fmt.Errorf("%q is not a valid percentage", s)
	}
	if roundUp {
		return (p*total + 99) / 100, nil
	}
	return p * total / 100, nil
}
