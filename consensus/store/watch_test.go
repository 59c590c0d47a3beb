package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Delivery happens inside Apply, so once Apply has returned every event it
// produced is already buffered: tests read without blocking and still use a
// deadline in case that promise breaks.

func nextEvent(t *testing.T, w *Watcher) Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watcher closed: %v", w.Err())
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return Event{}
}

func expectNone(t *testing.T, w *Watcher) {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if ok {
			t.Fatalf("unexpected event %s %s rev %d", ev.Type, ev.Object.GetObjectMeta().Name, ev.Revision)
		}
		t.Fatalf("watcher closed unexpectedly: %v", w.Err())
	default:
	}
}

// expect reads one event and checks "TYPE name@rev".
func expect(t *testing.T, w *Watcher, want string) Event {
	t.Helper()
	ev := nextEvent(t, w)
	got := fmt.Sprintf("%s %s@%d", ev.Type, ev.Object.GetObjectMeta().Name, ev.Revision)
	if got != want {
		t.Fatalf("event %q, want %q", got, want)
	}
	if rv := ev.Object.GetObjectMeta().ResourceVersion; rv != fmt.Sprint(ev.Revision) {
		t.Fatalf("event object resourceVersion %s != revision %d", rv, ev.Revision)
	}
	return ev
}

// waitClosed waits, with a deadline, for the watcher's channel to end,
// discarding what is still buffered.
func waitClosed(t *testing.T, w *Watcher) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watcher not closed within 5s")
		}
	}
}

func TestWatchFromNowPastAndFuture(t *testing.T) {
	s := testStore()
	mustApply(t, s, create(pod("default", "a", "", nil)), create(pod("default", "b", "", nil)))

	now, err := s.Watch("Pod", "", 0, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer now.Stop()
	past, err := s.Watch("Pod", "", 1, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer past.Stop()
	future, err := s.Watch("Pod", "", 4, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer future.Stop()
	expect(t, past, "ADDED b@2")
	expectNone(t, now)
	expectNone(t, past)

	mustApply(t, s, update(editPod(t, s, "default", "a", func(p *api.Pod) { p.Labels = map[string]string{"x": "y"} })))
	mustApply(t, s, Op{Type: OpDelete, Key: Key{Kind: "Pod", Namespace: "default", Name: "b"}})
	mustApply(t, s, create(pod("default", "c", "", nil)))
	for _, w := range []*Watcher{now, past} {
		expect(t, w, "MODIFIED a@3")
		expect(t, w, "DELETED b@4")
		expect(t, w, "ADDED c@5")
		expectNone(t, w)
	}
	// A watch from revision 4 (a replica further ahead) skips up to 4.
	expect(t, future, "ADDED c@5")
	expectNone(t, future)
}

func TestWatchTooOld(t *testing.T) {
	s := New(Config{HistorySize: 3, WatchBuffer: 8})
	for i := range 5 {
		mustApply(t, s, create(pod("default", fmt.Sprint("p", i), "", nil)))
	}
	// Revisions 3, 4, 5 are retained: a watch from 2 or later works.
	_, err := s.Watch("Pod", "", 1, Selector{})
	if !errors.Is(err, ErrTooOld) || !strings.Contains(err.Error(), "oldest revision a watch can start from is 2") {
		t.Fatalf("watch from 1: %v", err)
	}
	w, err := s.Watch("Pod", "", 2, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expect(t, w, "ADDED p2@3")
	expect(t, w, "ADDED p3@4")
	expect(t, w, "ADDED p4@5")
	expectNone(t, w)

	if _, err := s.Watch("Pod", "", -1, Selector{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative revision: %v", err)
	}
	if _, err := s.Watch("Widget", "", 0, Selector{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := s.Watch("Node", "default", 0, Selector{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("namespace on a cluster-scoped kind: %v", err)
	}
}

func TestWatchFilters(t *testing.T) {
	s := testStore()
	all, _ := s.Watch("", "", 0, Selector{})
	defer all.Stop()
	nsA, _ := s.Watch("", "a", 0, Selector{})
	defer nsA.Stop()
	nodes, _ := s.Watch("Node", "", 0, Selector{})
	defer nodes.Stop()

	mustApply(t, s, create(pod("a", "p", "", nil)), create(node("n1")), create(configMap("b", "cfg")), create(configMap("a", "cfg2")))
	expect(t, all, "ADDED p@1")
	expect(t, all, "ADDED n1@2")
	expect(t, all, "ADDED cfg@3")
	expect(t, all, "ADDED cfg2@4")
	expect(t, nsA, "ADDED p@1")
	expect(t, nsA, "ADDED cfg2@4")
	expect(t, nodes, "ADDED n1@2")
	for _, w := range []*Watcher{all, nsA, nodes} {
		expectNone(t, w)
	}
}

func TestWatchSelectorTransitions(t *testing.T) {
	s := testStore()
	web, err := api.ParseSelector("app=web")
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch("Pod", "default", 0, Selector{Labels: web})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	onN1, _ := s.Watch("Pod", "", 0, Selector{Fields: api.FieldSelector{{Field: "spec.nodeName", Operator: "=", Value: "n1"}}})
	defer onN1.Stop()

	setApp := func(v string) {
		mustApply(t, s, update(editPod(t, s, "default", "p", func(p *api.Pod) { p.Labels = map[string]string{"app": v} })))
	}
	mustApply(t, s, create(pod("default", "p", "", map[string]string{"app": "db"})))
	expectNone(t, w)
	setApp("web")
	expect(t, w, "ADDED p@2")
	setApp("web")
	expect(t, w, "MODIFIED p@3")
	setApp("db")
	ev := expect(t, w, "DELETED p@4")
	if ev.Object.GetObjectMeta().Labels["app"] != "web" {
		t.Errorf("DELETED on leaving the selection should carry the last matching state, got labels %v", ev.Object.GetObjectMeta().Labels)
	}
	if stored := mustGet(t, s, "Pod", "default", "p").GetObjectMeta(); stored.ResourceVersion != "4" || stored.Labels["app"] != "db" {
		t.Errorf("stored object disturbed: %+v", stored)
	}
	setApp("db")
	expectNone(t, w)
	setApp("web")
	expect(t, w, "ADDED p@6")
	mustApply(t, s, Op{Type: OpDelete, Key: Key{Kind: "Pod", Namespace: "default", Name: "p"}})
	expect(t, w, "DELETED p@7")
	mustApply(t, s, create(pod("default", "q", "", nil)))
	expectNone(t, w)

	// Binding a pod to a node is an ADDED for that node's watcher; moving it
	// away a DELETED.
	mustApply(t, s, update(editPod(t, s, "default", "q", func(p *api.Pod) { p.Spec.NodeName = "n1" })))
	expect(t, onN1, "ADDED q@9")
	mustApply(t, s, update(editPod(t, s, "default", "q", func(p *api.Pod) { p.Spec.NodeName = "n2" })))
	expect(t, onN1, "DELETED q@10")
	expectNone(t, onN1)
}

func TestWatchReplayUsesSelectorTransitions(t *testing.T) {
	s := testStore()
	mustApply(t, s, create(pod("default", "p", "", map[string]string{"app": "db"})))
	mustApply(t, s, update(editPod(t, s, "default", "p", func(p *api.Pod) { p.Labels["app"] = "web" })))
	mustApply(t, s, update(editPod(t, s, "default", "p", func(p *api.Pod) { p.Labels["app"] = "db" })))
	web, _ := api.ParseSelector("app=web")
	w, err := s.Watch("Pod", "", 1, Selector{Labels: web})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expect(t, w, "ADDED p@2")
	expect(t, w, "DELETED p@3")
	expectNone(t, w)
}

func TestWatchOverflowDoesNotBlockApply(t *testing.T) {
	s := New(Config{HistorySize: 100, WatchBuffer: 4})
	slow, err := s.Watch("Pod", "", 0, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := s.Watch("Pod", "", 0, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Stop()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 8 {
			s.Apply([]Op{create(pod("default", fmt.Sprint("p", i), "", nil))})
			if i == 3 { // the fast watcher keeps up in the middle of the burst
				for range 4 {
					<-fast.Events()
				}
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Apply blocked on a slow watcher")
	}
	// The slow watcher got its first 4 events, then was closed.
	for i := range 4 {
		expect(t, slow, fmt.Sprintf("ADDED p%d@%d", i, i+1))
	}
	waitClosed(t, slow)
	if !errors.Is(slow.Err(), ErrWatchOverflow) {
		t.Errorf("slow watcher Err = %v, want ErrWatchOverflow", slow.Err())
	}
	slow.Stop() // after an overflow, Stop is harmless and keeps the reason
	if !errors.Is(slow.Err(), ErrWatchOverflow) {
		t.Errorf("Stop after overflow replaced the reason: %v", slow.Err())
	}
	for i := 4; i < 8; i++ {
		expect(t, fast, fmt.Sprintf("ADDED p%d@%d", i, i+1))
	}
	expectNone(t, fast)
	if fast.Err() != nil {
		t.Errorf("fast watcher: %v", fast.Err())
	}
}

func TestWatchReplayLargerThanBuffer(t *testing.T) {
	s := New(Config{HistorySize: 100, WatchBuffer: 2})
	for i := range 10 {
		mustApply(t, s, create(pod("default", fmt.Sprint("p", i), "", nil)))
	}
	w, err := s.Watch("Pod", "", 0+1, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// The replay (9 events) fits even though the live buffer is 2.
	for i := 1; i < 10; i++ {
		expect(t, w, fmt.Sprintf("ADDED p%d@%d", i, i+1))
	}
	expectNone(t, w)
}

func TestWatchStop(t *testing.T) {
	s := testStore()
	w, err := s.Watch("", "", 0, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, create(node("n1")))
	w.Stop()
	w.Stop()
	if w.Err() != nil {
		t.Errorf("Err after Stop = %v, want nil", w.Err())
	}
	// Buffered events may still be read, then the channel ends.
	expect(t, w, "ADDED n1@1")
	waitClosed(t, w)
	mustApply(t, s, create(node("n2"))) // no send on a closed channel
	s.mu.RLock()
	n := len(s.watchers)
	s.mu.RUnlock()
	if n != 0 {
		t.Errorf("%d watchers still registered after Stop", n)
	}
}

// TestWatchListConsistency: a consumer that lists at revision R and watches
// from R while writers run sees every change exactly once, with no gap.
func TestWatchListConsistency(t *testing.T) {
	s := New(Config{HistorySize: 10000, WatchBuffer: 10000})
	// A seed object puts the store past revision 0: Watch(…, 0, …) means
	// "from now", not "after revision 0" (see the Watch documentation).
	mustApply(t, s, create(pod("default", "seed", "", nil)))
	const writers, perWriter = 4, 100
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				name := fmt.Sprintf("w%d-%d", g, i)
				s.Apply([]Op{create(pod("default", name, fmt.Sprint("n", i%3), nil))})
				if i%2 == 1 {
					s.Apply([]Op{{Type: OpDelete, Key: Key{Kind: "Pod", Namespace: "default", Name: name}}})
				}
			}
		}()
	}
	type consumer struct {
		state map[string]bool
		w     *Watcher
		next  int64
	}
	var consumers []*consumer
	for range 5 {
		objs, rev, err := s.List("Pod", "", Selector{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := s.Watch("Pod", "", rev, Selector{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		c := &consumer{state: map[string]bool{}, w: w, next: rev + 1}
		for _, o := range objs {
			c.state[o.GetObjectMeta().Name] = true
		}
		consumers = append(consumers, c)
	}
	wg.Wait()
	final := s.Revision()
	want, _, _ := s.List("Pod", "", Selector{})
	for i, c := range consumers {
		for c.next <= final {
			ev := nextEvent(t, c.w)
			if ev.Revision != c.next {
				t.Fatalf("consumer %d: got revision %d, want %d (gap or duplicate)", i, ev.Revision, c.next)
			}
			c.next++
			name := ev.Object.GetObjectMeta().Name
			if ev.Type == Deleted {
				delete(c.state, name)
			} else {
				c.state[name] = true
			}
		}
		expectNone(t, c.w)
		if len(c.state) != len(want) {
			t.Fatalf("consumer %d rebuilt %d pods, store has %d", i, len(c.state), len(want))
		}
		for _, o := range want {
			if !c.state[o.GetObjectMeta().Name] {
				t.Fatalf("consumer %d misses %s", i, o.GetObjectMeta().Name)
			}
		}
	}
}

func TestConcurrentApplyListWatch(t *testing.T) {
	s := New(Config{HistorySize: 50, WatchBuffer: 8})
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				objs, _, err := s.List("Pod", "", Selector{Fields: api.FieldSelector{{Field: "spec.nodeName", Operator: "=", Value: "n1"}}})
				if err != nil {
					t.Error(err)
					return
				}
				for _, o := range objs {
					_ = o.GetObjectMeta().Labels["x"]
				}
				w, err := s.Watch("", "", 0, Selector{})
				if err != nil {
					t.Error(err)
					return
				}
				select {
				case <-w.Events():
				default:
				}
				w.Stop()
			}
		}()
	}
	var writers sync.WaitGroup
	for g := range 3 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 200 {
				name := fmt.Sprintf("p%d-%d", g, i%10)
				res := s.Apply([]Op{create(pod("default", name, "n1", nil))})
				if res[0].Err != nil {
					p := pod("default", name, fmt.Sprint("n", i%2), map[string]string{"x": fmt.Sprint(i)})
					s.Apply([]Op{update(p)})
				}
				if i%7 == 0 {
					s.Apply([]Op{{Type: OpDelete, Key: Key{Kind: "Pod", Namespace: "default", Name: name}}})
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	all, rev, _ := s.List("Pod", "", Selector{})
	if rev != s.Revision() || len(all) > 30 {
		t.Errorf("rev %d/%d, %d pods", rev, s.Revision(), len(all))
	}
}

// WatchBuffered gives a watch its own buffer: more events than the store's
// default fit, and a bad size is refused with the limit named.
func TestWatchBuffered(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WatchBuffer = 4
	s := New(cfg)
	for _, bad := range []int{-1, MaxWatchBuffer + 1} {
		if _, err := s.WatchBuffered("", "", 0, Selector{}, bad); err == nil || !strings.Contains(err.Error(), "watch buffer") {
			t.Errorf("buffer %d: %v", bad, err)
		}
	}
	small, err := s.Watch("", "", 0, Selector{})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Stop()
	big, err := s.WatchBuffered("", "", 0, Selector{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Stop()
	for i := range 50 {
		if r := s.Apply([]Op{create(pod("default", fmt.Sprint("p", i), "n", nil))}); r[0].Err != nil {
			t.Fatal(r[0].Err)
		}
	}
	for range 50 {
		if _, ok := <-big.Events(); !ok {
			t.Fatalf("the watch with a buffer of 100 closed: %v", big.Err())
		}
	}
	for range small.Events() {
	}
	if !errors.Is(small.Err(), ErrWatchOverflow) {
		t.Errorf("the watch with the default buffer of 4: %v, want an overflow", small.Err())
	}
}
