package apiserver

import (
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

func seedEvent(e *env, name string, ref api.ObjectReference, typ, reason, msg, component string, count int32, last time.Time) {
	ev := &api.Event{ObjectMeta: api.ObjectMeta{Name: name, Namespace: api.EventNamespace(ref)}, InvolvedObject: ref,
		Type: typ, Reason: reason, Message: msg, Count: count, Source: api.EventSource{Component: component},
		FirstTimestamp: api.NewTime(last.Add(-time.Minute)), LastTimestamp: api.NewTime(last)}
	e.seed(ev)
}

// TestKubectlDescribeEvents: the real kubectl (1.32) finds an object's
// Events with the field selector it sends (involvedObject name, namespace,
// uid) and prints them under describe; another pod's Events stay out;
// describe node finds the Node's Events by its name as uid; get events
// prints the server's table.
func TestKubectlDescribeEvents(t *testing.T) {
	e := newEnv(t)
	seedLabeledPod(e, "web-1", "web")
	seedLabeledPod(e, "other", "web")
	e.seed(&api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}})
	ref := func(kind, ns, name string) api.ObjectReference {
		o, err := e.st.Get(store.Key{Kind: kind, Namespace: ns, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return api.RefTo(o)
	}
	now := time.Now()
	web := ref("Pod", "default", "web-1")
	seedEvent(e, "web-1.a", web, api.EventTypeNormal, "Scheduled", "Successfully assigned default/web-1 to n1", "default-scheduler", 1, now)
	seedEvent(e, "web-1.b", web, api.EventTypeWarning, "BackOff", "Back-off restarting failed container c", "kubelet", 7, now)
	seedEvent(e, "other.a", ref("Pod", "default", "other"), api.EventTypeNormal, "Pulled", "not about web-1", "kubelet", 1, now)
	seedEvent(e, "n1.a", ref("Node", "", "n1"), api.EventTypeNormal, "VoterAdded", "n1 became a Raft voter", "shoal-voter-manager", 1, now)

	out := e.kubectl("describe", "pod", "web-1")
	if !strings.Contains(out, "Events:") {
		t.Fatalf("describe pod: no Events section:\n%s", out)
	}
	events := out[strings.Index(out, "Events:"):]
	for _, want := range []string{"Scheduled", "Successfully assigned default/web-1 to n1", "default-scheduler", "BackOff", "(x7 over", "Warning"} {
		if !strings.Contains(events, want) {
			t.Errorf("describe pod Events lack %q:\n%s", want, events)
		}
	}
	if strings.Contains(events, "not about web-1") {
		t.Errorf("describe pod shows another pod's Event:\n%s", events)
	}

	out = e.kubectl("describe", "node", "n1")
	if i := strings.Index(out, "Events:"); i < 0 || !strings.Contains(out[i:], "VoterAdded") {
		t.Errorf("describe node: no VoterAdded Event:\n%s", out)
	}

	out = e.kubectl("get", "events")
	mustLine(t, "get events", out, "LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")
	// The age column depends on how long kubectl took: compare the rest.
	found := false
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.Join(f[1:], " ") == "Warning BackOff pod/web-1 Back-off restarting failed container c" {
			found = true
		}
	}
	if !found {
		t.Errorf("get events: no BackOff row for pod/web-1:\n%s", out)
	}
	out = e.kubectl("get", "ev", "--field-selector", "type=Warning", "-o", "name")
	if strings.TrimSpace(out) != "event/web-1.b" {
		t.Errorf("get ev --field-selector type=Warning -o name:\n%s", out)
	}
}

// Events about a namespace's objects do not keep it from being deleted:
// they would for an hour, until collected.
func TestNamespaceDeleteIgnoresEvents(t *testing.T) {
	e := newEnv(t)
	e.seedNamespace("team")
	seedEvent(e, "gone.1", api.ObjectReference{Kind: "Pod", Namespace: "team", Name: "gone"}, api.EventTypeNormal,
		"Killing", "Stopping container c", "kubelet", 1, time.Now())
	if r := e.del("/api/v1/namespaces/team"); r.code != 200 {
		t.Fatalf("delete namespace with only Events: HTTP %d: %s", r.code, r.body)
	}
}
