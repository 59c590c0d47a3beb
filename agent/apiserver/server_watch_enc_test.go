package apiserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// encoderLine is what a watch wrote for an event before lines were shared:
// one json.Encoder per stream.
func encoderLine(t *testing.T, ev store.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(watchLine{Type: string(ev.Type), Object: eventObject(ev)}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The shared line of an event is byte for byte what each watch's encoder
// wrote before, both when it is encoded and when it is handed out again.
func TestSharedWatchLineIsTheEncodersLine(t *testing.T) {
	now := api.Time{Time: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: "web-0", Namespace: "default", UID: "u1", ResourceVersion: "7",
			Labels: map[string]string{"app": "web"}, CreationTimestamp: now},
		Spec:   api.PodSpec{NodeName: "n1", Containers: []api.Container{{Name: "c", Image: "nginx", Command: []string{"sh", "-c", "echo '<&>' \u2028 é"}}}},
		Status: api.PodStatus{Phase: "Running", PodIP: "10.0.0.3"},
	}
	api.SetTypeMeta(pod)
	bare := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "c", Namespace: "ns", UID: "u2", ResourceVersion: "5"},
		Data: map[string]string{"b": "2", "a": "<html>&amp;", "z": "\x00\x1f"}} // no TypeMeta: filled on encode
	deleted := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "d", Namespace: "ns", UID: "u3", ResourceVersion: "5",
		DeletionTimestamp: &now}}
	api.SetTypeMeta(deleted)
	left := pod.DeepCopyObject()
	left.GetObjectMeta().ResourceVersion = "9" // left a selection at 9: stamped by the store
	node := &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1", UID: "u4", ResourceVersion: "11"}}
	events := []store.Event{
		{Type: store.Added, Object: pod, Revision: 7},
		{Type: store.Modified, Object: pod, Revision: 7, Prev: bare},
		{Type: store.Added, Object: bare, Revision: 5},
		{Type: store.Deleted, Object: deleted, Revision: 12}, // stamped 12 on encode
		{Type: store.Deleted, Object: left, Revision: 9},
		{Type: store.Modified, Object: node, Revision: 11},
		{Type: store.Added, Object: node, Revision: 0}, // no revision: never shared
	}
	var c watchLines
	for i, ev := range events {
		want := encoderLine(t, ev)
		for round := range 2 {
			got, err := c.eventLine(api.KindInfo{Kind: ev.Object.GetTypeMeta().Kind}, ev)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("event %d round %d:\n got %s\nwant %s", i, round, got, want)
			}
		}
	}
	if bare.APIVersion != "" || deleted.ResourceVersion != "5" {
		t.Error("encoding changed the stored objects")
	}
}

// Many watches sending the same event at once wait for one encoding.
func TestSharedWatchLineEncodedOnceConcurrently(t *testing.T) {
	var c watchLines
	cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "c", Namespace: "ns", UID: "u", ResourceVersion: "3"}}
	ev := store.Event{Type: store.Added, Object: cm, Revision: 3}
	want := encoderLine(t, ev)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.eventLine(api.KindInfo{Kind: "ConfigMap"}, ev)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("got %q, %v", got, err)
			}
		}()
	}
	wg.Wait()
	if _, _, n := c.stats(); n != 1 {
		t.Errorf("%d encodes for one event sent by 50 watches, want 1", n)
	}
}

// The shared lines are bounded in count and in bytes.
func TestSharedWatchLinesBounded(t *testing.T) {
	var c watchLines
	info := api.KindInfo{Kind: "ConfigMap"}
	for i := 1; i <= maxSharedLines+100; i++ {
		cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: fmt.Sprint("c", i), Namespace: "ns", ResourceVersion: fmt.Sprint(i)}}
		if _, err := c.eventLine(info, store.Event{Type: store.Added, Object: cm, Revision: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _, _ := c.stats(); n != maxSharedLines {
		t.Errorf("%d lines held, want the limit %d", n, maxSharedLines)
	}
	big := strings.Repeat("x", 1<<20)
	for i := 1; i <= 20; i++ {
		rev := int64(maxSharedLines + 1000 + i)
		cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "big", Namespace: "ns", ResourceVersion: fmt.Sprint(rev)},
			Data: map[string]string{"k": big}}
		if _, err := c.eventLine(info, store.Event{Type: store.Modified, Object: cm, Revision: rev}); err != nil {
			t.Fatal(err)
		}
		if _, b, _ := c.stats(); b > maxSharedBytes {
			t.Fatalf("%d bytes held after %d large events, want at most %d", b, i, maxSharedBytes)
		}
	}
	if n, b, _ := c.stats(); n == 0 || b < maxSharedBytes/2 {
		t.Errorf("%d lines, %d bytes held: the recent large events should stay", n, b)
	}
}

// N watches of the same objects cost one encoding per event, not N (issue
// 14: 300 watches of all pods spent a fifth of the leader's CPU encoding
// each event for each watch), and each watch still gets every event.
func TestWatchesOfOneStreamShareEachEncoding(t *testing.T) {
	e := newEnv(t)
	const watches = 12
	var streams []*watchStream
	for range watches {
		streams = append(streams, e.openWatch(t, "/api/v1/namespaces/default/configmaps?watch=true"))
	}
	// One watch of a narrower selection sees the same lines where it
	// sees the same events.
	streams = append(streams, e.openWatch(t, "/api/v1/namespaces/default/configmaps?watch=true&fieldSelector=metadata.name%3Dshared"))
	_, _, before := e.srv.lines.stats()
	mustCode(t, e.post("/api/v1/namespaces/default/configmaps", configMapJSON("shared", map[string]string{"a": "1"})), 201)
	mustCode(t, e.put("/api/v1/namespaces/default/configmaps/shared", configMapJSON("shared", map[string]string{"a": "2"})), 200)
	mustCode(t, e.del("/api/v1/namespaces/default/configmaps/shared"), 200)
	for i, ws := range streams {
		for _, want := range []string{"ADDED", "MODIFIED", "DELETED"} {
			if ev := ws.next(t); ev.Type != want || ev.meta(t).Name != "shared" {
				t.Fatalf("watch %d: %s %s, want %s shared", i, ev.Type, ev.meta(t).Name, want)
			}
		}
	}
	if _, _, after := e.srv.lines.stats(); after-before != 3 {
		t.Errorf("%d encodes for 3 events sent to %d watches, want 3", after-before, len(streams))
	}
}
