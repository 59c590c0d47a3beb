package api

import (
	"strings"
	"time"
)

// EventLastSeen is when an Event last happened: lastTimestamp, else
// eventTime, else its creation.
func EventLastSeen(e *Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case e.EventTime != nil && !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// EventObject names an Event's object as kubectl does: kind/name, the
// kind in lower case.
func EventObject(e *Event) string {
	return strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
}

// eventColumns is the table of Events: LAST SEEN, TYPE, REASON, OBJECT,
// MESSAGE, as kubectl get events prints them.
func eventColumns(now time.Time) ([]string, RowFunc) {
	return []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"}, func(o Object) []string {
		e := o.(*Event)
		return []string{FormatAge(EventLastSeen(e), now), e.Type, e.Reason, EventObject(e), e.Message}
	}
}

// Selectable fields of Events: what kubectl describe and kubectl get
// events --field-selector ask for.
const (
	FieldInvolvedKind      = "involvedObject.kind"
	FieldInvolvedNamespace = "involvedObject.namespace"
	FieldInvolvedName      = "involvedObject.name"
	FieldInvolvedUID       = "involvedObject.uid"
	FieldInvolvedAPI       = "involvedObject.apiVersion"
	FieldInvolvedRV        = "involvedObject.resourceVersion"
	FieldInvolvedFieldPath = "involvedObject.fieldPath"
	FieldEventReason       = "reason"
	FieldEventType         = "type"
	FieldEventSource       = "source"
	FieldEventReportingCtl = "reportingComponent"
)

var eventFields = []string{FieldInvolvedKind, FieldInvolvedNamespace, FieldInvolvedName, FieldInvolvedUID,
	FieldInvolvedAPI, FieldInvolvedRV, FieldInvolvedFieldPath, FieldEventReason, FieldEventType, FieldEventSource, FieldEventReportingCtl}

func eventFieldValue(e *Event, field string) (string, bool) {
	r := e.InvolvedObject
	switch field {
	case FieldInvolvedKind:
		return r.Kind, true
	case FieldInvolvedNamespace:
		return r.Namespace, true
	case FieldInvolvedName:
		return r.Name, true
	case FieldInvolvedUID:
		return r.UID, true
	case FieldInvolvedAPI:
		return r.APIVersion, true
	case FieldInvolvedRV:
		return r.ResourceVersion, true
	case FieldInvolvedFieldPath:
		return r.FieldPath, true
	case FieldEventReason:
		return e.Reason, true
	case FieldEventType:
		return e.Type, true
	case FieldEventSource:
		return e.Source.Component, true
	case FieldEventReportingCtl:
		return e.ReportingComponent, true
	}
	return "", false
}
