package api

import (
	"strings"
	"testing"
	"time"
)

func validEvent() *Event {
	t0 := time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)
	return &Event{
		TypeMeta:       TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta:     ObjectMeta{Name: "web.0123456789abcdef", Namespace: "default"},
		InvolvedObject: ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "u1"},
		Reason:         "Scheduled", Message: "Successfully assigned default/web to n1", Type: EventTypeNormal,
		Count: 1, FirstTimestamp: NewTime(t0), LastTimestamp: NewTime(t0.Add(time.Minute)),
		Source: EventSource{Component: "scheduler"},
	}
}

func TestValidateEvent(t *testing.T) {
	if errs := Validate(validEvent()); len(errs) > 0 {
		t.Fatalf("valid event: %v", errs)
	}
	cases := []struct {
		name string
		edit func(e *Event)
		want string
	}{
		{"no reason", func(e *Event) { e.Reason = "" }, "reason: Required value"},
		{"reason too long", func(e *Event) { e.Reason = strings.Repeat("A", MaxEventReasonLength+1) }, "reason: Too long"},
		{"reason with spaces", func(e *Event) { e.Reason = "Failed Scheduling" }, "reason: Invalid value"},
		{"message too long", func(e *Event) { e.Message = strings.Repeat("m", MaxEventMessageLength+1) }, "message: Too long: must have at most 1024 characters"},
		{"bad type", func(e *Event) { e.Type = "Error" }, `type: Unsupported value: "Error"`},
		{"no type", func(e *Event) { e.Type = "" }, "type: Required value"},
		{"negative count", func(e *Event) { e.Count = -1 }, "count: Invalid value"},
		{"no object kind", func(e *Event) { e.InvolvedObject.Kind = "" }, "involvedObject.kind: Required value"},
		{"no object name", func(e *Event) { e.InvolvedObject.Name = "" }, "involvedObject.name: Required value"},
		{"other namespace", func(e *Event) { e.InvolvedObject.Namespace = "kube" }, "involvedObject.namespace: Invalid value"},
		{"component too long", func(e *Event) { e.Source.Component = strings.Repeat("c", MaxEventComponentLength+1) }, "source.component: Too long"},
		{"last before first", func(e *Event) { e.LastTimestamp = NewTime(e.FirstTimestamp.Add(-time.Second)) }, "lastTimestamp: Invalid value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := validEvent()
			tc.edit(e)
			errs := Validate(e)
			if len(errs) == 0 || !strings.Contains(errs.Error(), tc.want) {
				t.Fatalf("errors %v, want one containing %q", errs, tc.want)
			}
		})
	}
}

func TestEventFieldSelector(t *testing.T) {
	e := validEvent()
	for sel, want := range map[string]bool{
		"involvedObject.name=web,involvedObject.namespace=default,involvedObject.uid=u1": true,
		"involvedObject.kind=Pod,type=Normal,reason=Scheduled":                           true,
		"involvedObject.kind=Node":       false,
		"type!=Warning,source=scheduler": true,
	} {
		fs, err := ParseFieldSelector(sel)
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		if got := fs.Matches(e); got != want {
			t.Errorf("%s matches = %v, want %v", sel, got, want)
		}
	}
	// A pod has no involvedObject: the selector matches none.
	fs, _ := ParseFieldSelector("involvedObject.name=web")
	if fs.Matches(&Pod{ObjectMeta: ObjectMeta{Name: "web"}}) {
		t.Error("involvedObject.name matched a Pod")
	}
}

func TestEventTable(t *testing.T) {
	e := validEvent()
	h, row := TableColumns("Event", false, TableEnv{Now: e.LastTimestamp.Add(90 * time.Second)})
	if got := strings.Join(h, "|"); got != "LAST SEEN|TYPE|REASON|OBJECT|MESSAGE" {
		t.Fatalf("header %s", got)
	}
	if got := strings.Join(row(e), "|"); got != "90s|Normal|Scheduled|pod/web|Successfully assigned default/web to n1" {
		t.Fatalf("row %s", got)
	}
}

func TestRefToNode(t *testing.T) {
	n := &Node{ObjectMeta: ObjectMeta{Name: "n1", UID: "real-uid"}}
	r := RefTo(n)
	if r.UID != "n1" || r.Kind != "Node" || r.APIVersion != "v1" || EventNamespace(r) != "default" {
		t.Fatalf("node ref %+v", r)
	}
}
