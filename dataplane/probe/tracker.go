package probe

import (
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Kind is what a probe decides: whether to restart the container
// (Liveness), whether it receives traffic (Readiness), or whether it has
// finished starting (Startup).
type Kind int

const (
	Liveness Kind = iota
	Readiness
	Startup
)

func (k Kind) String() string {
	switch k {
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	case Startup:
		return "Startup"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Reasons carried by an Outcome.
const (
	// ReasonUnhealthy: the latest result was a failure (as the Kubernetes
	// event of that name).
	ReasonUnhealthy = "Unhealthy"
	// ReasonProbeFailed: a liveness or startup probe failed
	// failureThreshold times in a row; the container must be restarted.
	ReasonProbeFailed = "ProbeFailed"
)

// Initial is the state a probe of kind reports before its first result,
// when the container has such a probe: a readiness probe starts not ready,
// a liveness probe starts healthy, a startup probe starts not started. A
// container without a probe of a kind counts as passing it (ready, healthy,
// started) from the start; ContainerProbes applies both rules.
func Initial(kind Kind) bool {
	return kind == Liveness
}

// Outcome is what a Tracker concluded from a result.
type Outcome struct {
	// Ready is the readiness the container now has (for a readiness
	// tracker; ContainerProbes fills it for every kind).
	Ready bool
	// Restart says the container failed its liveness or startup probe
	// failureThreshold times in a row and must be restarted. The tracker
	// then holds (is never due again); the restarted container gets a new
	// tracker.
	Restart bool
	// Started says the startup probe has passed (for a startup tracker;
	// ContainerProbes fills it for every kind).
	Started bool
	// Reason and Message explain a failure; both are empty on success,
	// except that Message may carry a Prober warning.
	Reason, Message string
}

// Tracker is the state of one probe of one container. It is a pure state
// machine: time and results are inputs. It is not safe for concurrent use.
type Tracker struct {
	kind                               Kind
	period                             time.Duration
	successThreshold, failureThreshold int

	next     time.Time // when the probe is next due
	lastOK   bool      // the latest result
	run      int       // how many results in a row equal lastOK
	state    bool      // Ready for readiness, healthy for liveness, started for startup
	held     bool      // liveness/startup decided a restart; startup passed
	observed bool      // at least one result seen
}

// NewTracker returns the tracker of probe pr (which must not be nil) of a
// container started at containerStarted. Unset (zero) period and thresholds
// take the API defaults.
func NewTracker(kind Kind, pr *api.Probe, containerStarted time.Time) *Tracker {
	period := pr.PeriodSeconds
	if period <= 0 {
		period = api.DefaultProbePeriodSeconds
	}
	st := int(pr.SuccessThreshold)
	if st <= 0 {
		st = api.DefaultProbeSuccessThreshold
	}
	ft := int(pr.FailureThreshold)
	if ft <= 0 {
		ft = api.DefaultProbeFailureThreshold
	}
	if kind != Readiness {
		st = 1 // liveness and startup probes must succeed once (validation enforces it)
	}
	delay := max(pr.InitialDelaySeconds, 0)
	return &Tracker{
		kind:             kind,
		period:           time.Duration(period) * time.Second,
		successThreshold: st,
		failureThreshold: ft,
		next:             containerStarted.Add(time.Duration(delay) * time.Second),
		state:            Initial(kind),
	}
}

// Kind returns the kind of probe tracked.
func (t *Tracker) Kind() Kind { return t.kind }

// Due says whether the probe should run at now: initialDelaySeconds after
// the container started, then every periodSeconds. A tracker that decided a
// restart, or a startup tracker that passed, is never due again.
func (t *Tracker) Due(now time.Time) bool {
	return !t.held && !now.Before(t.next)
}

// NextDue is when the probe is next due; ok is false when it never will be.
func (t *Tracker) NextDue() (at time.Time, ok bool) {
	return t.next, !t.held
}

// State is the tracker's current verdict: ready (readiness), healthy
// (liveness) or started (startup).
func (t *Tracker) State() bool { return t.state }

// Observe records the result r of a probe run at now and returns the
// outcome. The next run is due one period after the one that was scheduled
// (or one period after now, when the tracker fell behind). A result given
// to a held tracker changes nothing.
func (t *Tracker) Observe(now time.Time, r Result) Outcome {
	if t.held {
		return t.outcome(false, r)
	}
	t.next = t.next.Add(t.period)
	if !t.next.After(now) {
		t.next = now.Add(t.period)
	}
	if t.observed && r.Success == t.lastOK {
		t.run++
	} else {
		t.observed, t.lastOK, t.run = true, r.Success, 1
	}
	restart := false
	switch {
	case r.Success && t.run >= t.successThreshold:
		t.state = true
		if t.kind == Startup {
			t.held = true // a startup probe stops once it passed
		}
	case !r.Success && t.run >= t.failureThreshold:
		switch t.kind {
		case Readiness:
			t.state = false
		case Liveness, Startup:
			// The container is restarted; probing holds until the
			// new container gets its own tracker.
			t.state = false
			restart, t.held, t.run = true, true, 0
		}
	}
	return t.outcome(restart, r)
}

func (t *Tracker) outcome(restart bool, r Result) Outcome {
	o := Outcome{Restart: restart, Message: r.Message}
	switch t.kind {
	case Readiness:
		o.Ready = t.state
	case Startup:
		o.Started = t.state
	}
	if !r.Success {
		o.Reason = ReasonUnhealthy
		o.Message = fmt.Sprintf("%s probe failed: %s", t.kind, r.Message)
		if restart {
			o.Reason = ReasonProbeFailed
			o.Message = fmt.Sprintf("container failed its %s probe %d times in a row, will be restarted: %s",
				lower(t.kind), t.failureThreshold, r.Message)
		}
	}
	return o
}

func lower(k Kind) string {
	switch k {
	case Liveness:
		return "liveness"
	case Readiness:
		return "readiness"
	}
	return "startup"
}
