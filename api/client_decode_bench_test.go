package api

import (
	"encoding/json"
	"testing"
	"time"
)

// statusAnswer is what the server answers a node's status write with: the
// whole pod, Running, as the client decodes it (decodeTyped).
const statusAnswer = `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"api-5c6d7e-abcde","generateName":"api-5c6d7e-","namespace":"shop",` +
	`"uid":"11111111-2222-4333-8444-555555555555","resourceVersion":"98765","creationTimestamp":"2026-12-01T09:00:00Z",` +
	`"labels":{"app":"api","pod-template-hash":"5c6d7e"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"api-5c6d7e","uid":"66666666-7777-4888-9999-000000000000","controller":true}]},` +
	`"spec":{"containers":[{"name":"api","image":"registry.local/api:2","ports":[{"containerPort":9000,"protocol":"TCP"}]}],"nodeName":"node-7","restartPolicy":"Always"},` +
	`"status":{"phase":"Running","conditions":[{"type":"PodScheduled","status":"True","lastTransitionTime":"2026-12-01T09:00:00Z"},` +
	`{"type":"Ready","status":"True","lastTransitionTime":"2026-12-01T09:00:02Z"}],"hostIP":"10.1.0.7","podIP":"10.245.7.3","startTime":"2026-12-01T09:00:01Z",` +
	`"containerStatuses":[{"name":"api","state":{"running":{"startedAt":"2026-12-01T09:00:02Z"}},"ready":true,"restartCount":0,"image":"registry.local/api:2"}]}}`

// BenchmarkDecodeTypedPod: the client's decode of a pod.
func BenchmarkDecodeTypedPod(b *testing.B) {
	k, ok := LookupKind("Pod")
	if !ok {
		b.Fatal("no Pod kind")
	}
	raw := []byte(statusAnswer)
	b.ReportAllocs()
	for range b.N {
		if _, err := decodeTyped(k, raw); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeTypedMatchesEncodingJSON: the client reads the server's
// answer as encoding/json does (Time's own fast path included).
func TestDecodeTypedMatchesEncodingJSON(t *testing.T) {
	k, _ := LookupKind("Pod")
	got, err := decodeTyped(k, []byte(statusAnswer))
	if err != nil {
		t.Fatal(err)
	}
	want := k.New()
	if err := json.Unmarshal([]byte(statusAnswer), want); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(a) != string(w) {
		t.Errorf("decodeTyped:\n%s\nencoding/json:\n%s", a, w)
	}
	if p := got.(*Pod); p.Status.StartTime == nil || !p.Status.StartTime.Equal(time.Date(2026, 12, 1, 9, 0, 1, 0, time.UTC)) {
		t.Errorf("startTime %v", p.Status.StartTime)
	}
}

// BenchmarkTimeMarshal: Time's JSON against json.Marshal of its string
// (the baseline, and what it wrote before).
func BenchmarkTimeMarshal(b *testing.B) {
	tm := Time{time.Date(2026, 12, 1, 9, 0, 1, 0, time.UTC)}
	b.Run("time", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := tm.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json-string", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := json.Marshal(tm.UTC().Format(time.RFC3339)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
