package kubelet

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/runtime"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testPod(policy string, containers ...string) *api.Pod {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default", UID: "u1"}}
	p.Spec.RestartPolicy = policy
	p.Spec.NodeName = "n1"
	g := int64(7)
	p.Spec.TerminationGracePeriodSeconds = &g
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, api.Container{Name: c, Image: "img:1"})
	}
	return p
}

// obsBuilder builds observations in one line per container.
type obsOpt func(*podObservation)

func sandbox(o *podObservation) {
	o.Network = &podNet{IP: "10.244.9.2"}
	o.NetworkPresent, o.Volumes, o.VolumesPresent = true, true, true
}

func attempt(name string, n int, state runtime.State, exit int, started, finished time.Duration) obsOpt {
	return func(o *podObservation) {
		c := o.container(name)
		a := attemptObs{Attempt: n, ID: fmt.Sprintf("%s-%d", name, n), State: state, ExitCode: exit}
		if started >= 0 {
			a.StartedAt = t0.Add(started)
		}
		if state == runtime.StateExited {
			a.FinishedAt = t0.Add(finished)
		}
		c.Attempts = append(c.Attempts, a)
		c.PulledFor = n
		sortAttempts(c)
	}
}

func failures(name string, n int) obsOpt {
	return func(o *podObservation) { o.container(name).Failures = n }
}

func pulled(name string, n int) obsOpt {
	return func(o *podObservation) { o.container(name).PulledFor = n }
}

func failed(key, reason string, at, until time.Duration) obsOpt {
	return func(o *podObservation) {
		o.Errors[key] = stepError{Reason: reason, Message: "boom", At: t0.Add(at), Until: t0.Add(until), Count: 1}
	}
}

func unhealthy(name string) obsOpt {
	return func(o *podObservation) { o.container(name).latest().Unhealthy = true }
}

func mkObs(opts ...obsOpt) *podObservation {
	o := newPodObservation()
	for _, f := range opts {
		f(o)
	}
	return o
}

func planString(p podPlan) string {
	var parts []string
	for _, s := range p.Steps {
		x := s.Kind.String()
		if s.Container != "" {
			x += " " + s.Container
		}
		if s.Kind == stepPull || s.Kind == stepCreate {
			x += fmt.Sprintf("#%d", s.Attempt)
		}
		if s.Kind == stepCreate && s.Failures > 0 {
			x += fmt.Sprintf(" failures=%d", s.Failures)
		}
		if s.ID != "" {
			x += " " + s.ID
		}
		if s.Kind == stepStop || s.Kind == stepPreStop {
			x += " grace=" + s.Grace.String()
		}
		parts = append(parts, x)
	}
	out := strings.Join(parts, "; ")
	if !p.WakeAt.IsZero() {
		out += fmt.Sprintf(" | wake +%s", p.WakeAt.Sub(t0))
	}
	if p.Done {
		out += " | done"
	}
	return out
}

func TestDecidePod(t *testing.T) {
	b := DefaultBackoff()
	deleting := func(p *api.Pod) *api.Pod {
		// As the API marks it: deadline now + grace.
		ts := api.NewTime(t0.Add(7 * time.Second))
		g := int64(7)
		p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &g
		return p
	}
	withInit := func(p *api.Pod) *api.Pod {
		p.Spec.InitContainers = []api.Container{{Name: "init1", Image: "i:1"}, {Name: "init2", Image: "i:1"}}
		return p
	}
	cases := []struct {
		name string
		pod  *api.Pod
		obs  *podObservation
		now  time.Duration
		want string
	}{
		{"new pod sets up network and volumes and pulls, all together", testPod("Always", "a", "b"), mkObs(), 0,
			"setup-network; setup-volumes; pull a#0; pull b#0"},
		{"new pod with init containers pulls the first init's image with the sandbox", withInit(testPod("Always", "a")), mkObs(), 0,
			"setup-network; setup-volumes; pull init1#0"},
		{"pulled during the sandbox: not again", testPod("Always", "a"), mkObs(pulled("a", 0)), 0,
			"setup-network; setup-volumes"},
		{"network failed recently waits, volumes and pull go on", testPod("Always", "a"), mkObs(failed("setup-network", "", 0, 2*time.Second)), time.Second,
			"setup-volumes; pull a#0 | wake +2s"},
		{"sandbox ready pulls every container", testPod("Always", "a", "b"), mkObs(sandbox), 0,
			"pull a#0; pull b#0"},
		{"pulled creates", testPod("Always", "a"), mkObs(sandbox, pulled("a", 0)), 0,
			"create a#0"},
		{"created starts", testPod("Always", "a"), mkObs(sandbox, attempt("a", 0, runtime.StateCreated, 0, -1, 0)), 0,
			"start a a-0"},
		{"running does nothing", testPod("Always", "a"), mkObs(sandbox, attempt("a", 0, runtime.StateRunning, 0, 0, 0)), time.Hour,
			""},
		{"pull back-off waits", testPod("Always", "a"), mkObs(sandbox, failed("pull/a", ReasonErrImagePull, 0, 10*time.Second)), 5 * time.Second,
			" | wake +10s"},
		{"pull back-off over retries", testPod("Always", "a"), mkObs(sandbox, failed("pull/a", ReasonErrImagePull, 0, 10*time.Second)), 10 * time.Second,
			"pull a#0"},
		{"config error retried after its delay", testPod("Always", "a"), mkObs(sandbox, pulled("a", 0), failed("create/a", ReasonCreateContainerConfigError, 0, 2*time.Second)), time.Second,
			" | wake +2s"},
		{"first crash restarts at once", testPod("Always", "a"), mkObs(sandbox, attempt("a", 0, runtime.StateExited, 1, 0, time.Second)), time.Second,
			"pull a#1"},
		{"first crash, image pulled for attempt 1, creates with failures=1", testPod("Always", "a"),
			mkObs(sandbox, attempt("a", 0, runtime.StateExited, 1, 0, time.Second), pulled("a", 1)), time.Second,
			"create a#1 failures=1"},
		{"second quick crash backs off 10s", testPod("Always", "a"),
			mkObs(sandbox, attempt("a", 0, runtime.StateExited, 1, 0, time.Second), attempt("a", 1, runtime.StateExited, 1, 2*time.Second, 3*time.Second), failures("a", 1)), 4 * time.Second,
			" | wake +13s"},
		{"fourth quick crash backs off 40s", testPod("Always", "a"),
			mkObs(sandbox, attempt("a", 2, runtime.StateExited, 1, 0, time.Second), attempt("a", 3, runtime.StateExited, 1, 2*time.Second, 3*time.Second), failures("a", 3)), 4 * time.Second,
			" | wake +43s"},
		{"back-off capped at 5m", testPod("Always", "a"),
			mkObs(sandbox, attempt("a", 2, runtime.StateExited, 1, 0, time.Second), attempt("a", 3, runtime.StateExited, 1, 2*time.Second, 3*time.Second), failures("a", 30)), 4 * time.Second,
			" | wake +5m3s"},
		{"ran 10 minutes: back-off resets", testPod("Always", "a"),
			mkObs(sandbox, attempt("a", 3, runtime.StateExited, 1, 0, 11*time.Minute), failures("a", 6), pulled("a", 4)), 11 * time.Minute,
			"create a#4 failures=1"},
		{"Always restarts after success", testPod("Always", "a"), mkObs(sandbox, attempt("a", 0, runtime.StateExited, 0, 0, time.Second)), time.Second,
			"pull a#1"},
		{"OnFailure keeps a success", testPod("OnFailure", "a"), mkObs(sandbox, attempt("a", 0, runtime.StateExited, 0, 0, time.Second)), time.Second,
			""},
		{"OnFailure restarts a failure", testPod("OnFailure", "a"), mkObs(sandbox, attempt("a", 0, runtime.StateExited, 2, 0, time.Second)), time.Second,
			"pull a#1"},
		{"Never keeps a failure", testPod("Never", "a"), mkObs(sandbox, attempt("a", 0, runtime.StateExited, 2, 0, time.Second)), time.Second,
			""},
		{"liveness failure stops with the pod's grace", testPod("Always", "a"),
			mkObs(sandbox, attempt("a", 0, runtime.StateRunning, 0, 0, 0), unhealthy("a")), time.Minute,
			"stop a a-0 grace=7s"},
		{"attempts older than the previous are removed", testPod("Always", "a"),
			mkObs(sandbox, attempt("a", 0, runtime.StateExited, 1, 0, 1), attempt("a", 1, runtime.StateExited, 1, 0, 1), attempt("a", 2, runtime.StateRunning, 0, 0, 0)), time.Minute,
			"remove a-0"},
		{"container no longer in the spec is stopped", testPod("Always", "a"),
			mkObs(sandbox, attempt("a", 0, runtime.StateRunning, 0, 0, 0), attempt("old", 0, runtime.StateRunning, 0, 0, 0)), time.Minute,
			"stop old-0 grace=7s"},
		{"init containers run first, one at a time", withInit(testPod("Always", "a")), mkObs(sandbox), 0,
			"pull init1#0"},
		{"second init after the first succeeded", withInit(testPod("Always", "a")), mkObs(sandbox, attempt("init1", 0, runtime.StateExited, 0, 0, 1)), 0,
			"pull init2#0"},
		{"init running blocks the app", withInit(testPod("Always", "a")), mkObs(sandbox, attempt("init1", 0, runtime.StateExited, 0, 0, 1), attempt("init2", 0, runtime.StateRunning, 0, 0, 0)), 0,
			""},
		{"failed init restarts (Always)", withInit(testPod("Always", "a")), mkObs(sandbox, attempt("init1", 0, runtime.StateExited, 1, 0, 1)), 1,
			"pull init1#1"},
		{"failed init stays (Never)", withInit(testPod("Never", "a")), mkObs(sandbox, attempt("init1", 0, runtime.StateExited, 1, 0, 1)), 0,
			""},
		{"inits done: app starts", withInit(testPod("Always", "a")), mkObs(sandbox, attempt("init1", 0, runtime.StateExited, 0, 0, 1), attempt("init2", 0, runtime.StateExited, 0, 0, 1)), 0,
			"pull a#0"},
		{"deleted: stop running with grace", deleting(testPod("Always", "a", "b")),
			mkObs(sandbox, attempt("a", 0, runtime.StateRunning, 0, 0, 0), attempt("b", 0, runtime.StateExited, 0, 0, 1)), 0,
			"stop a-0 grace=7s; remove b-0"},
		{"gone (nil): default grace, created ones removed", nil,
			mkObs(sandbox, attempt("a", 0, runtime.StateRunning, 0, 0, 0), attempt("b", 0, runtime.StateCreated, 0, -1, 0)), 0,
			"stop a-0 grace=30s; remove b-0"},
		{"deleted: containers gone, sandbox torn down", deleting(testPod("Always", "a")), mkObs(sandbox), 0,
			"teardown-volumes; teardown-network"},
		{"deleted: everything gone, the object is deleted", deleting(testPod("Always", "a")), mkObs(), 0,
			"delete-pod"},
		{"deleted: the final delete failed, retried later", deleting(testPod("Always", "a")), mkObs(failed("delete-pod", "", 0, 2*time.Second)), time.Second,
			" | wake +2s"},
		{"deleted: object gone too", deleting(testPod("Always", "a")), mkObs(func(o *podObservation) { o.ObjectGone = true }), 0,
			" | done"},
		{"deleted: stop grace is what is left", deleting(testPod("Always", "a")),
			mkObs(sandbox, attempt("a", 0, runtime.StateRunning, 0, 0, 0)), 3 * time.Second,
			"stop a-0 grace=4s"},
		{"deleted: never less than 2s between SIGTERM and SIGKILL", deleting(testPod("Always", "a")),
			mkObs(sandbox, attempt("a", 0, runtime.StateRunning, 0, 0, 0)), time.Minute,
			"stop a-0 grace=2s"},
		{"deleted: a deadline beyond the grace period is capped", deleting(testPod("Always", "a")),
			mkObs(sandbox, attempt("a", 0, runtime.StateRunning, 0, 0, 0)), -time.Hour,
			"stop a-0 grace=7s"},
		{"deleted: teardown failure retried later", nil, mkObs(sandbox, failed("teardown-network", "", 0, 5*time.Second)), 0,
			"teardown-volumes | wake +5s"},
		{"deleted: nothing left", nil, mkObs(), 0,
			" | done"},
		{"adopted orphan network only", nil, mkObs(func(o *podObservation) { o.NetworkPresent = true }), 0,
			"teardown-network"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := planString(decidePod(tc.pod, tc.obs, t0.Add(tc.now), b))
			if got != tc.want {
				t.Errorf("plan\n got: %q\nwant: %q", got, tc.want)
			}
		})
	}
}

// withPreStop gives container name a preStop hook.
func withPreStop(p *api.Pod, name string, h api.LifecycleHandler) *api.Pod {
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			p.Spec.Containers[i].Lifecycle = &api.Lifecycle{PreStop: &h}
		}
	}
	return p
}

func preStopRan(id string, at time.Duration, done bool) obsOpt {
	return func(o *podObservation) { o.PreStop[id] = preStopObs{Started: t0.Add(at), Done: done} }
}

func TestDecideTermination(t *testing.T) {
	b := DefaultBackoff()
	// Deleted at t0 with 10 s of grace: the deadline is t0+10s.
	deleting := func(p *api.Pod) *api.Pod {
		ts := api.NewTime(t0.Add(10 * time.Second))
		g := int64(10)
		p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &g
		return p
	}
	exec := api.LifecycleHandler{Exec: &api.ExecAction{Command: []string{"drain"}}}
	sleep := func(s int64) api.LifecycleHandler { return api.LifecycleHandler{Sleep: &api.SleepAction{Seconds: s}} }
	execPod := func() *api.Pod { return deleting(withPreStop(testPod("Always", "a", "b"), "a", exec)) }
	sleepPod := func(s int64) *api.Pod { return deleting(withPreStop(testPod("Always", "a"), "a", sleep(s))) }
	running := func(names ...string) obsOpt {
		return func(o *podObservation) {
			for _, n := range names {
				attempt(n, 0, runtime.StateRunning, 0, 0, 0)(o)
			}
		}
	}
	cases := []struct {
		name string
		pod  *api.Pod
		obs  *podObservation
		now  time.Duration
		want string
	}{
		{"hook first; a container without one is stopped at once", execPod(), mkObs(sandbox, running("a", "b")), 0,
			"prestop a a-0 grace=10s; stop b-0 grace=10s"},
		{"hook done: stopped with what is left", execPod(), mkObs(sandbox, running("a"), preStopRan("a-0", 0, true)), 3 * time.Second,
			"stop a-0 grace=7s"},
		{"hook used up the grace: still 2s to stop", execPod(), mkObs(sandbox, running("a"), preStopRan("a-0", 0, true)), 9 * time.Second,
			"stop a-0 grace=2s"},
		{"deadline passed before the hook ran: skipped", execPod(), mkObs(sandbox, running("a")), 11 * time.Second,
			"stop a-0 grace=2s"},
		{"hook runs once", execPod(), mkObs(sandbox, running("a"), preStopRan("a-0", 0, true)), 0,
			"stop a-0 grace=10s"},
		{"exited container: no hook, removed", execPod(), mkObs(sandbox, attempt("a", 0, runtime.StateExited, 0, 0, 1)), 0,
			"remove a-0"},
		{"sleep begins", sleepPod(3), mkObs(sandbox, running("a")), 0,
			"prestop a a-0 grace=10s"},
		{"sleep lasts its seconds", sleepPod(3), mkObs(sandbox, running("a"), preStopRan("a-0", 0, false)), time.Second,
			" | wake +3s"},
		{"sleep over: stop with what is left", sleepPod(3), mkObs(sandbox, running("a"), preStopRan("a-0", 0, false)), 3 * time.Second,
			"stop a-0 grace=7s"},
		{"sleep cut at the deadline", sleepPod(60), mkObs(sandbox, running("a"), preStopRan("a-0", 0, false)), 5 * time.Second,
			" | wake +10s"},
		{"sleep past the deadline: stop", sleepPod(60), mkObs(sandbox, running("a"), preStopRan("a-0", 0, false)), 10 * time.Second,
			"stop a-0 grace=2s"},
		{"a shortened deadline cuts the sleep", func() *api.Pod {
			p := sleepPod(60)
			ts, g := api.NewTime(t0.Add(4*time.Second)), int64(1)
			p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &g
			return p
		}(), mkObs(sandbox, running("a"), preStopRan("a-0", 0, false)), 3 * time.Second,
			" | wake +4s"},
		{"init containers have no hook", func() *api.Pod {
			p := execPod()
			p.Spec.InitContainers = []api.Container{{Name: "init", Image: "i:1", Lifecycle: &api.Lifecycle{PreStop: &exec}}}
			return p
		}(), mkObs(sandbox, running("init")), 0,
			"stop init-0 grace=10s"},
		{"gone with the last spec's hook", func() *api.Pod {
			// The worker's tombstone: the last pod seen, gone at t0.
			p := withPreStop(testPod("Always", "a"), "a", exec)
			ts, g := api.NewTime(t0.Add(7*time.Second)), int64(7)
			p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &g
			return p
		}(), mkObs(sandbox, running("a"), func(o *podObservation) { o.ObjectGone = true }), 0,
			"prestop a a-0 grace=7s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := planString(decidePod(tc.pod, tc.obs, t0.Add(tc.now), b))
			if got != tc.want {
				t.Errorf("plan\n got: %q\nwant: %q", got, tc.want)
			}
		})
	}
}

// A deletion driven through decidePod on a fake clock runs each step in
// order: preStop, stop, remove, teardown, and the final delete last.
func TestDecideTerminationSequence(t *testing.T) {
	b := DefaultBackoff()
	pod := withPreStop(testPod("Always", "a"), "a", api.LifecycleHandler{Sleep: &api.SleepAction{Seconds: 4}})
	ts, g := api.NewTime(t0.Add(7*time.Second)), int64(7)
	pod.DeletionTimestamp, pod.DeletionGracePeriodSeconds = &ts, &g
	obs := mkObs(sandbox, attempt("a", 0, runtime.StateRunning, 0, 0, 0))
	now := t0
	var seq []string
	for i := 0; i < 20; i++ {
		plan := decidePod(pod, obs, now, b)
		if plan.Done {
			break
		}
		for _, s := range plan.Steps {
			seq = append(seq, fmt.Sprintf("+%s %s", now.Sub(t0), s.Kind))
			switch s.Kind {
			case stepPreStop:
				obs.PreStop[s.ID] = preStopObs{Started: now}
			case stepStop:
				if s.Grace != 3*time.Second {
					t.Errorf("stopped with grace %s, want the 3s left", s.Grace)
				}
				obs.container("a").Attempts[0].State = runtime.StateExited
			case stepRemove:
				delete(obs.Containers, "a")
			case stepTeardownVolumes:
				obs.Volumes, obs.VolumesPresent = false, false
			case stepTeardownNetwork:
				obs.Network, obs.NetworkPresent = nil, false
			case stepDeletePod:
				obs.ObjectGone = true
			}
		}
		if len(plan.Steps) == 0 {
			if plan.WakeAt.IsZero() {
				t.Fatalf("stalled at +%s", now.Sub(t0))
			}
			now = plan.WakeAt
		}
	}
	want := "+0s prestop; +4s stop; +4s remove; +4s teardown-volumes; +4s teardown-network; +4s delete-pod"
	if got := strings.Join(seq, "; "); got != want {
		t.Errorf("sequence\n got: %s\nwant: %s", got, want)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := DefaultBackoff()
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	for i, w := range want {
		if got := b.delay(i); got != w {
			t.Errorf("delay(%d) = %v, want %v", i, got, w)
		}
	}
	if got := b.delay(1000); got != 5*time.Minute {
		t.Errorf("delay(1000) = %v", got)
	}
}

// A crash loop driven through decidePod with a fake clock never restarts
// faster than the back-off allows.
func TestDecideCrashLoopNeverHot(t *testing.T) {
	b := DefaultBackoff()
	pod := testPod("Always", "a")
	obs := mkObs(sandbox)
	now := t0
	var starts []time.Time
	for i := 0; i < 200 && now.Before(t0.Add(time.Hour)); i++ {
		plan := decidePod(pod, obs, now, b)
		for _, s := range plan.Steps {
			c := obs.container(s.Container)
			switch s.Kind {
			case stepPull:
				c.PulledFor = s.Attempt
			case stepCreate:
				c.Failures = s.Failures
				c.Attempts = append(c.Attempts, attemptObs{Attempt: s.Attempt, ID: fmt.Sprint(s.Attempt), State: runtime.StateCreated})
			case stepStart:
				a := c.latest()
				// It crashes one second after starting.
				a.State, a.StartedAt, a.FinishedAt, a.ExitCode = runtime.StateExited, now, now.Add(time.Second), 1
				starts = append(starts, now)
			case stepRemove:
				for _, co := range obs.Containers {
					co.Attempts = slices.DeleteFunc(co.Attempts, func(a attemptObs) bool { return a.ID == s.ID })
				}
			}
		}
		if len(plan.Steps) == 0 {
			if plan.WakeAt.IsZero() {
				t.Fatalf("crash loop stalled at %v", now)
			}
			now = plan.WakeAt
		}
	}
	if len(starts) < 8 {
		t.Fatalf("only %d starts in an hour", len(starts))
	}
	for i := 2; i < len(starts); i++ {
		gap := starts[i].Sub(starts[i-1]) - time.Second
		want := b.delay(i - 1)
		if gap != want {
			t.Errorf("start %d came %v after the previous exit, want %v", i, gap, want)
		}
	}
}
