package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// filledStore returns a store holding several kinds, with updates, status
// updates and deletes behind it.
func filledStore(t *testing.T) *Store {
	t.Helper()
	s := testStore()
	one := int32(1)
	mustApply(t, s,
		create(pod("default", "web", "n1", map[string]string{"app": "web"})),
		create(pod("kube", "dns", "n2", nil)),
		create(pod("default", "gone", "", nil)),
		create(node("n1")),
		create(node("n2")),
		create(configMap("default", "cfg")),
		create(&api.Secret{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "pw"}, Data: map[string][]byte{"p": {0, 1, 2}}}),
		create(&api.Deployment{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "d"}, Spec: api.DeploymentSpec{Replicas: &one}}),
		create(&api.Namespace{ObjectMeta: api.ObjectMeta{Name: "kube"}}),
	)
	mustApply(t, s, update(editPod(t, s, "default", "web", func(p *api.Pod) { p.Spec.NodeName = "n2" })))
	mustApply(t, s, Op{Type: OpUpdateStatus, Object: editPod(t, s, "default", "web", func(p *api.Pod) { p.Status.Phase = api.PodRunning })})
	mustApply(t, s, Op{Type: OpDelete, Key: Key{Kind: "Pod", Namespace: "default", Name: "gone"}})
	return s
}

func snapshotBytes(t *testing.T, s *Store) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.Snapshot(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSnapshotRestore(t *testing.T) {
	src := filledStore(t)
	snap := snapshotBytes(t, src)
	if !bytes.HasPrefix(snap, []byte(`{"format":"shoal-store","version":1,"revision":12}`+"\n")) {
		t.Fatalf("unexpected header: %.80s", snap)
	}

	dst := testStore()
	mustApply(t, dst, create(pod("default", "old", "", nil))) // replaced wholesale
	w, err := dst.Watch("", "", 0, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if dst.Revision() != src.Revision() {
		t.Errorf("revision %d, want %d", dst.Revision(), src.Revision())
	}
	if again := snapshotBytes(t, dst); !bytes.Equal(again, snap) {
		t.Errorf("restored store snapshots differently:\n%s\n---\n%s", again, snap)
	}
	// Open watchers must re-list.
	waitClosed(t, w)
	if !errors.Is(w.Err(), ErrTooOld) {
		t.Errorf("watcher after restore: %v", w.Err())
	}
	// History restarts at the snapshot's revision.
	if _, err := dst.Watch("Pod", "", src.Revision()-1, Selector{}); !errors.Is(err, ErrTooOld) {
		t.Errorf("watch from before the restore: %v", err)
	}
	w2, err := dst.Watch("Pod", "", src.Revision(), Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()

	// Indexes, statuses and typed fields survived.
	objs, _, _ := dst.List("Pod", "", Selector{Fields: api.FieldSelector{{Field: "spec.nodeName", Operator: "=", Value: "n2"}}})
	if names(objs) != "default/web kube/dns" {
		t.Errorf("node index after restore: %q", names(objs))
	}
	web := mustGet(t, dst, "Pod", "default", "web").(*api.Pod)
	if web.Status.Phase != api.PodRunning || web.Generation != 2 || web.ResourceVersion != "11" || web.Kind != "Pod" {
		t.Errorf("restored pod: %+v", web)
	}
	if sec := mustGet(t, dst, "Secret", "default", "pw").(*api.Secret); !bytes.Equal(sec.Data["p"], []byte{0, 1, 2}) {
		t.Errorf("secret data: %v", sec.Data)
	}
	if _, err := dst.Get(Key{Kind: "Pod", Namespace: "default", Name: "old"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("old content survived the restore: %v", err)
	}
	// Writing continues from the snapshot's revision.
	r := mustApply(t, dst, create(pod("default", "new", "", nil)))
	if rv := r[0].Object.GetObjectMeta().ResourceVersion; rv != "13" {
		t.Errorf("first write after restore has rv %s, want 13", rv)
	}
	expect(t, w2, "ADDED new@13")
}

func TestSnapshotOfEmptyStore(t *testing.T) {
	snap := snapshotBytes(t, testStore())
	s := filledStore(t)
	if err := s.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if s.Revision() != 0 {
		t.Errorf("revision %d", s.Revision())
	}
	if objs, _, _ := s.List("Pod", "", Selector{}); len(objs) != 0 {
		t.Errorf("%d pods left", len(objs))
	}
}

func TestRestoreCorruptLeavesStoreUnchanged(t *testing.T) {
	good := string(snapshotBytes(t, filledStore(t)))
	lines := strings.SplitAfter(good, "\n")
	lines = lines[:len(lines)-1] // the empty string after the final newline
	header, objects, trailer := lines[0], lines[1:len(lines)-1], lines[len(lines)-1]
	join := func(parts ...string) string { return strings.Join(parts, "") }

	tests := []struct {
		name, snap, msg string
	}{
		{"empty", "", "header"},
		{"not json", "hello\n", "header"},
		{"wrong format", `{"format":"etcd","version":1,"revision":1}` + "\n" + `{"end":true,"count":0,"revision":1}`, "format"},
		{"future version", `{"format":"shoal-store","version":2,"revision":1}` + "\n", "version 2"},
		{"negative revision", `{"format":"shoal-store","version":1,"revision":-1}` + "\n", "negative"},
		{"truncated, no trailer", join(header, objects[0], objects[1]), "no trailer"},
		{"truncated mid-object", join(header, objects[0][:len(objects[0])/2]), "object 1"},
		{"trailer count wrong", join(header, objects[0], trailer), "trailer says"},
		{"duplicate object", join(header, objects[0], objects[0], strings.Join(objects[1:], ""), trailer), "twice"},
		{"unknown kind", join(header, `{"kind":"Widget","object":{"metadata":{"name":"w"}}}`+"\n", trailer), `"Widget"`},
		{"missing object", join(header, `{"kind":"Pod"}`+"\n", trailer), "missing object"},
		{"bad object", join(header, `{"kind":"Pod","object":{"metadata":"x"}}`+"\n", trailer), "object 1 (Pod)"},
		{"namespace on a node", join(header, `{"kind":"Node","object":{"metadata":{"name":"n","namespace":"x","resourceVersion":"1"}}}`+"\n", trailer), "cluster-scoped"},
		{"resourceVersion past revision", join(header, `{"kind":"Node","object":{"metadata":{"name":"n","resourceVersion":"999"}}}`+"\n", trailer), `"999"`},
		{"no resourceVersion", join(header, `{"kind":"Node","object":{"metadata":{"name":"n"}}}`+"\n", trailer), "resourceVersion"},
		{"data after trailer", good + "{}\n", "after the trailer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := filledStore(t)
			w, err := s.Watch("", "", 0, Selector{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			before := snapshotBytes(t, s)
			err = s.Restore(strings.NewReader(tt.snap))
			if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Restore: %v, want ErrBadSnapshot mentioning %q", err, tt.msg)
			}
			if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
				t.Error("a failed restore changed the store")
			}
			expectNone(t, w) // still open, nothing happened
		})
	}
	// The pieces the corruptions were built from do restore when intact.
	if err := testStore().Restore(strings.NewReader(good)); err != nil {
		t.Fatalf("intact snapshot: %v", err)
	}
}

// blockingWriter holds the first Write until released.
type blockingWriter struct {
	started, release chan struct{}
	buf              bytes.Buffer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	if b.started != nil {
		close(b.started)
		b.started = nil
		<-b.release
	}
	return b.buf.Write(p)
}

func TestSnapshotDoesNotHoldUpApply(t *testing.T) {
	s := filledStore(t)
	before := snapshotBytes(t, s)
	bw := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
	started := bw.started
	done := make(chan error, 1)
	go func() { done <- s.Snapshot(bw) }()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("snapshot never wrote")
	}
	applied := make(chan struct{})
	go func() {
		s.Apply([]Op{create(node("late"))})
		close(applied)
	}()
	select {
	case <-applied:
	case <-time.After(5 * time.Second):
		t.Fatal("Apply blocked behind a slow snapshot writer")
	}
	close(bw.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bw.buf.Bytes(), before) {
		t.Error("the snapshot is not the content at the moment it was taken")
	}
}

func TestCaptureIsPointInTime(t *testing.T) {
	s := filledStore(t)
	before := snapshotBytes(t, s)
	f := s.Capture()
	mustApply(t, s, create(node("late")))
	mustApply(t, s, Op{Type: OpDelete, Key: Key{Kind: "Pod", Namespace: "default", Name: "web"}})
	var b bytes.Buffer
	n, err := f.WriteTo(&b)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(b.Len()) || !bytes.Equal(b.Bytes(), before) {
		t.Errorf("capture wrote %d bytes (buffer %d), equal to the earlier snapshot: %v", n, b.Len(), bytes.Equal(b.Bytes(), before))
	}
	if f.Revision() != 12 || f.Len() != 8 {
		t.Errorf("capture at revision %d with %d objects, want 12 and 8", f.Revision(), f.Len())
	}
}
