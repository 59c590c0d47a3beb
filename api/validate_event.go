package api

import (
	"regexp"
	"strconv"
)

// Checks of Events.

var eventReasonRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

func (v *validator) event(e *Event) {
	io := path("involvedObject")
	if e.InvolvedObject.Kind == "" {
		v.add(Required(io.child("kind").String(), ""))
	}
	if e.InvolvedObject.Name == "" {
		v.add(Required(io.child("name").String(), ""))
	}
	if ns := e.InvolvedObject.Namespace; ns != "" && ns != e.Namespace {
		v.add(Invalid(io.child("namespace").String(), ns, "does not match metadata.namespace "+strconv.Quote(e.Namespace)))
	}
	v.maxLen(io.child("fieldPath"), e.InvolvedObject.FieldPath, MaxEventFieldPathLength)
	switch {
	case e.Reason == "":
		v.add(Required("reason", ""))
	case len(e.Reason) > MaxEventReasonLength:
		v.add(TooLong("reason", MaxEventReasonLength, "characters"))
	case !eventReasonRE.MatchString(e.Reason):
		v.add(Invalid("reason", e.Reason, "must be a word of letters and digits starting with a letter, e.g. FailedScheduling"))
	}
	v.maxLen("message", e.Message, MaxEventMessageLength)
	if e.Type == "" {
		v.add(Required("type", "one of Normal, Warning"))
	} else {
		v.enum("type", e.Type, eventTypes)
	}
	v.nonNegative("count", int64(e.Count))
	v.maxLen("source.component", e.Source.Component, MaxEventComponentLength)
	v.maxLen("source.host", e.Source.Host, MaxEventComponentLength)
	v.maxLen("reportingComponent", e.ReportingComponent, MaxEventComponentLength)
	v.maxLen("reportingInstance", e.ReportingInstance, MaxEventComponentLength)
	if !e.FirstTimestamp.IsZero() && !e.LastTimestamp.IsZero() && e.LastTimestamp.Before(e.FirstTimestamp.Time) {
		v.add(Invalid("lastTimestamp", e.LastTimestamp.UTC().Format("2006-01-02T15:04:05Z"), "must not be before firstTimestamp"))
	}
}

func (v *validator) maxLen(p path, s string, max int) {
	if len(s) > max {
		v.add(TooLong(p.String(), max, "characters"))
	}
}
