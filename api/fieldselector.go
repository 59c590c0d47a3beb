package api

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// FieldRequirement is one term of a field selector: Field = or != Value.
type FieldRequirement struct {
	Field    string
	Operator string // =, !=
	Value    string
}

// FieldSelector is a parsed field selector; empty matches everything.
type FieldSelector []FieldRequirement

// Selectable fields. FieldValue knows these; ParseFieldSelector accepts only
// these.
const (
	FieldName          = "metadata.name"
	FieldNamespace     = "metadata.namespace"
	FieldNodeName      = "spec.nodeName"
	FieldPhase         = "status.phase"
	FieldPodIP         = "status.podIP"
	FieldUnschedulable = "spec.unschedulable"
)

var selectableFields = append([]string{FieldName, FieldNamespace, FieldNodeName, FieldPhase, FieldPodIP, FieldUnschedulable}, eventFields...)

// ParseFieldSelector parses "f=v", "f==v" and "f!=v" terms joined by commas.
// The empty string matches everything. A field no kind can select is an
// error naming it.
func ParseFieldSelector(s string) (FieldSelector, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var fs FieldSelector
	for i, term := range strings.Split(s, ",") {
		t := strings.TrimSpace(term)
		if t == "" {
			return nil, fmt.Errorf("field selector %q: term %d is empty", s, i+1)
		}
		var r FieldRequirement
		switch {
		case strings.Contains(t, "!="):
			j := strings.Index(t, "!=")
			r = FieldRequirement{Field: t[:j], Operator: "!=", Value: t[j+2:]}
		case strings.Contains(t, "=="):
			j := strings.Index(t, "==")
			r = FieldRequirement{Field: t[:j], Operator: "=", Value: t[j+2:]}
		case strings.Contains(t, "="):
			j := strings.Index(t, "=")
			r = FieldRequirement{Field: t[:j], Operator: "=", Value: t[j+1:]}
		default:
			return nil, fmt.Errorf("field selector term %q: expected field=value, field==value or field!=value", t)
		}
		r.Field = strings.TrimSpace(r.Field)
		r.Value = strings.TrimSpace(r.Value)
		if r.Field == "" {
			return nil, fmt.Errorf("field selector term %q: missing field name", t)
		}
		if !slices.Contains(selectableFields, r.Field) {
			return nil, fmt.Errorf("field selector term %q: field %q is not selectable (known: %s)",
				t, r.Field, strings.Join(selectableFields, ", "))
		}
		if strings.ContainsAny(r.Value, "=!") {
			return nil, fmt.Errorf("field selector term %q: value %q must not contain '=' or '!'", t, r.Value)
		}
		fs = append(fs, r)
	}
	return fs, nil
}

// Matches reports whether obj satisfies every requirement. A field the kind
// of obj does not have never matches, with either operator.
func (f FieldSelector) Matches(obj Object) bool {
	for _, r := range f {
		v, ok := FieldValue(obj, r.Field)
		if !ok {
			return false
		}
		switch r.Operator {
		case "=", "==":
			if v != r.Value {
				return false
			}
		case "!=":
			if v == r.Value {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// String renders the canonical form, sorted; it parses back to an equal
// selector.
func (f FieldSelector) String() string {
	parts := make([]string, 0, len(f))
	for _, r := range f {
		op := r.Operator
		if op == "==" {
			op = "="
		}
		parts = append(parts, r.Field+op+r.Value)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// FieldValue returns the value of a selectable field of obj: metadata.name,
// metadata.namespace for every kind; spec.nodeName, status.phase and
// status.podIP for pods; spec.unschedulable ("true"/"false") for nodes. ok is
// false for a field the kind lacks.
func FieldValue(obj Object, field string) (value string, ok bool) {
	switch field {
	case FieldName:
		return obj.GetObjectMeta().Name, true
	case FieldNamespace:
		return obj.GetObjectMeta().Namespace, true
	}
	switch o := obj.(type) {
	case *Pod:
		switch field {
		case FieldNodeName:
			return o.Spec.NodeName, true
		case FieldPhase:
			return o.Status.Phase, true
		case FieldPodIP:
			return o.Status.PodIP, true
		}
	case *Node:
		if field == FieldUnschedulable {
			return strconv.FormatBool(o.Spec.Unschedulable), true
		}
	case *Event:
		return eventFieldValue(o, field)
	}
	return "", false
}
