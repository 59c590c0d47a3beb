package probe

import (
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"pgregory.net/rapid"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func sec(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

var (
	ok   = Result{Success: true}
	fail = Result{Message: "boom"}
)

func TestTrackerDue(t *testing.T) {
	tr := NewTracker(Readiness, &api.Probe{InitialDelaySeconds: 5, PeriodSeconds: 3}, t0)
	for _, tc := range []struct {
		at      int
		due     bool
		observe bool
	}{
		{0, false, false},
		{4, false, false},
		{5, true, true}, // first run at initialDelaySeconds
		{6, false, false},
		{7, false, false},
		{8, true, true}, // then every periodSeconds
		{10, false, false},
		{20, true, true}, // fell behind: next is one period after this run
		{22, false, false},
		{23, true, false},
	} {
		if got := tr.Due(sec(tc.at)); got != tc.due {
			t.Fatalf("Due(t0+%ds) = %v, want %v", tc.at, got, tc.due)
		}
		if tc.observe {
			tr.Observe(sec(tc.at), ok)
		}
	}
}

func TestTrackerDefaults(t *testing.T) {
	tr := NewTracker(Liveness, &api.Probe{}, t0)
	if !tr.Due(t0) {
		t.Fatal("no initial delay: due at start")
	}
	tr.Observe(t0, ok)
	if tr.Due(sec(9)) || !tr.Due(sec(10)) {
		t.Fatal("default period is 10s")
	}
	// Default failure threshold 3.
	for i, want := range []bool{false, false, true} {
		if o := tr.Observe(sec(10*(i+1)), fail); o.Restart != want {
			t.Fatalf("failure %d: Restart = %v, want %v", i+1, o.Restart, want)
		}
	}
}

func TestTrackerThresholds(t *testing.T) {
	type step struct {
		r    Result
		want Outcome // Reason/Message are checked only for non-emptiness
	}
	S, F := true, false
	seq := func(kind Kind, rs []bool, ready, restart, started []bool) []step {
		var out []step
		for i, r := range rs {
			res := ok
			if !r {
				res = fail
			}
			out = append(out, step{res, Outcome{Ready: ready[i], Restart: restart[i], Started: started[i]}})
		}
		return out
	}
	n := func(k int) []bool { return make([]bool, k) }
	cases := []struct {
		name  string
		kind  Kind
		probe api.Probe
		steps []step
	}{
		{"readiness success 1 failure 1", Readiness, api.Probe{SuccessThreshold: 1, FailureThreshold: 1},
			seq(Readiness, []bool{S, F, S, S, F}, []bool{true, false, true, true, false}, n(5), n(5))},
		{"readiness success 3", Readiness, api.Probe{SuccessThreshold: 3, FailureThreshold: 2},
			seq(Readiness, []bool{S, S, F, S, S, S, F, S, F, F, F},
				[]bool{false, false, false, false, false, true, true, true, true, false, false}, n(11), n(11))},
		{"liveness failure 3", Liveness, api.Probe{FailureThreshold: 3},
			seq(Liveness, []bool{F, F, S, F, F, F}, n(6), []bool{false, false, false, false, false, true}, n(6))},
		{"liveness held after restart", Liveness, api.Probe{FailureThreshold: 1},
			seq(Liveness, []bool{F, F, F}, n(3), []bool{true, false, false}, n(3))},
		{"startup passes", Startup, api.Probe{FailureThreshold: 5},
			seq(Startup, []bool{F, F, S, F}, n(4), n(4), []bool{false, false, true, true})},
		{"startup fails", Startup, api.Probe{FailureThreshold: 2},
			seq(Startup, []bool{F, F}, n(2), []bool{false, true}, n(2))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(tc.kind, &tc.probe, t0)
			for i, s := range tc.steps {
				o := tr.Observe(sec(10*i), s.r)
				if o.Ready != s.want.Ready || o.Restart != s.want.Restart || o.Started != s.want.Started {
					t.Fatalf("step %d (%v): got %+v, want %+v", i, s.r.Success, o, s.want)
				}
				if !s.r.Success && !tr.held && (o.Reason != ReasonUnhealthy || o.Message == "") {
					t.Fatalf("step %d: failure without reason: %+v", i, o)
				}
				if o.Restart && o.Reason != ReasonProbeFailed {
					t.Fatalf("step %d: restart reason %q", i, o.Reason)
				}
			}
		})
	}
}

func TestInitial(t *testing.T) {
	if Initial(Readiness) || !Initial(Liveness) || Initial(Startup) {
		t.Fatal("initial states: readiness false, liveness true, startup false")
	}
}

// TestTrackerProperty checks, for random thresholds and result sequences,
// that liveness restarts exactly when failureThreshold consecutive failures
// are reached (and never again), and that readiness flips exactly at its
// thresholds.
func TestTrackerProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := rapid.IntRange(1, 5).Draw(t, "successThreshold")
		ft := rapid.IntRange(1, 5).Draw(t, "failureThreshold")
		results := rapid.SliceOfN(rapid.Bool(), 1, 60).Draw(t, "results")
		pr := &api.Probe{SuccessThreshold: int32(st), FailureThreshold: int32(ft), PeriodSeconds: 1}

		live := NewTracker(Liveness, pr, t0)
		ready := NewTracker(Readiness, pr, t0)
		okRun, failRun := 0, 0
		model := false
		restarted := false
		for i, r := range results {
			if r {
				okRun, failRun = okRun+1, 0
			} else {
				okRun, failRun = 0, failRun+1
			}
			res := fail
			if r {
				res = ok
			}
			now := sec(i)

			lo := live.Observe(now, res)
			wantRestart := !restarted && failRun == ft
			if lo.Restart != wantRestart {
				t.Fatalf("step %d: Restart = %v, want %v (failRun %d, threshold %d)", i, lo.Restart, wantRestart, failRun, ft)
			}
			if lo.Restart {
				restarted = true
			}
			if restarted && live.Due(now.Add(time.Hour)) {
				t.Fatalf("step %d: liveness due after a restart was decided", i)
			}

			prev := model
			if okRun >= st {
				model = true
			} else if failRun >= ft {
				model = false
			}
			ro := ready.Observe(now, res)
			if ro.Ready != model {
				t.Fatalf("step %d: Ready = %v, want %v (okRun %d/%d, failRun %d/%d)", i, ro.Ready, model, okRun, st, failRun, ft)
			}
			if ro.Ready != prev && !(ro.Ready && okRun == st) && !(!ro.Ready && failRun == ft) {
				t.Fatalf("step %d: readiness flipped off threshold", i)
			}
		}
	})
}

func TestContainerProbesStartupGates(t *testing.T) {
	c := api.Container{
		Name:           "app",
		StartupProbe:   &api.Probe{PeriodSeconds: 1, FailureThreshold: 30},
		LivenessProbe:  &api.Probe{InitialDelaySeconds: 2, PeriodSeconds: 5, FailureThreshold: 2},
		ReadinessProbe: &api.Probe{PeriodSeconds: 3},
	}
	cp := NewContainerProbes(c, t0)
	if cp.Started() || cp.Ready() {
		t.Fatal("starts neither started nor ready")
	}
	k, _, ok1 := cp.Next(t0)
	if !ok1 || k != Startup {
		t.Fatalf("first probe is startup, got %v %v", k, ok1)
	}
	if _, _, again := cp.Next(t0); again {
		t.Fatal("an in-flight probe is not handed out twice; others wait for startup")
	}
	cp.Record(Startup, t0, fail)
	if _, _, ok2 := cp.Next(t0); ok2 {
		t.Fatal("nothing due right after a startup failure")
	}
	if at, ok3 := cp.NextDue(); !ok3 || !at.Equal(sec(1)) {
		t.Fatalf("NextDue = %v %v, want t0+1s", at, ok3)
	}
	k, _, _ = cp.Next(sec(1))
	o := cp.Record(k, sec(1), ok)
	if !o.Started || o.Ready || !cp.Started() || cp.Ready() {
		t.Fatalf("after startup success: %+v ready %v", o, cp.Ready())
	}
	// Liveness (initial delay 2s from container start) goes first, then readiness.
	var kinds []Kind
	for {
		k, _, more := cp.Next(sec(2))
		if !more {
			break
		}
		kinds = append(kinds, k)
	}
	if len(kinds) != 2 || kinds[0] != Liveness || kinds[1] != Readiness {
		t.Fatalf("due at 2s: %v", kinds)
	}
	if o := cp.Record(Readiness, sec(2), ok); !o.Ready || !cp.Ready() {
		t.Fatalf("ready after one readiness success: %+v", o)
	}
	cp.Record(Liveness, sec(2), fail)
	if k, _, _ := cp.Next(sec(7)); k != Liveness {
		t.Fatal("liveness due at 7s")
	}
	o = cp.Record(Liveness, sec(7), fail)
	if !o.Restart || o.Reason != ReasonProbeFailed {
		t.Fatalf("restart after 2 liveness failures: %+v", o)
	}
	if _, _, more := cp.Next(sec(100)); more {
		t.Fatal("no probe runs once a restart is pending")
	}
	if _, ok := cp.NextDue(); ok {
		t.Fatal("NextDue reports nothing once a restart is pending")
	}
}

func TestContainerProbesNoProbes(t *testing.T) {
	cp := NewContainerProbes(api.Container{Name: "app"}, t0)
	if !cp.Started() || !cp.Ready() {
		t.Fatal("a container without probes is started and ready")
	}
	if _, _, ok := cp.Next(sec(1000)); ok {
		t.Fatal("no probes, nothing due")
	}
	if o := cp.Record(Liveness, t0, fail); o.Restart || !o.Ready {
		t.Fatalf("a result for a missing probe changes nothing: %+v", o)
	}
}

func TestContainerProbesOnlyLiveness(t *testing.T) {
	cp := NewContainerProbes(api.Container{LivenessProbe: &api.Probe{}}, t0)
	if !cp.Ready() {
		t.Fatal("ready without a readiness probe")
	}
}
