package probe

import (
	"time"

	"github.com/shoal-dev/shoal/api"
)

// ContainerProbes combines the probes of one container run: the startup
// probe runs first, and liveness and readiness probes run only once it has
// passed (their initialDelaySeconds still count from the container's start,
// as in Kubernetes). A container that restarts gets a new ContainerProbes.
//
// It is pure (time is an input) and not safe for concurrent use.
type ContainerProbes struct {
	trackers [3]*Tracker // by Kind; nil when the container has no such probe
	probes   [3]*api.Probe
	inFlight [3]bool
}

// NewContainerProbes returns the probe state of container c started at
// started.
func NewContainerProbes(c api.Container, started time.Time) *ContainerProbes {
	cp := &ContainerProbes{}
	for kind, pr := range map[Kind]*api.Probe{Liveness: c.LivenessProbe, Readiness: c.ReadinessProbe, Startup: c.StartupProbe} {
		if pr != nil {
			cp.probes[kind] = pr
			cp.trackers[kind] = NewTracker(kind, pr, started)
		}
	}
	return cp
}

// Started says whether the container has passed its startup probe (always
// true without one).
func (c *ContainerProbes) Started() bool {
	t := c.trackers[Startup]
	return t == nil || t.State()
}

// Ready says whether the container is ready: started, and passing its
// readiness probe (or without one).
func (c *ContainerProbes) Ready() bool {
	if !c.Started() {
		return false
	}
	t := c.trackers[Readiness]
	return t == nil || t.State()
}

// order is the order in which due probes are handed out: startup gates the
// others, and liveness (which may restart) goes before readiness.
var order = [...]Kind{Startup, Liveness, Readiness}

// Next returns a probe that is due at now and marks it in flight: it is not
// returned again until its result is given to Record. Callers loop on Next
// until ok is false. Before the startup probe passed only the startup probe
// is ever due.
func (c *ContainerProbes) Next(now time.Time) (kind Kind, pr *api.Probe, ok bool) {
	for _, k := range order {
		if c.eligible(k) && c.trackers[k].Due(now) {
			c.inFlight[k] = true
			return k, c.probes[k], true
		}
	}
	return 0, nil, false
}

// NextDue is the earliest time a probe that is not in flight becomes due,
// for the caller's timer; ok is false when no probe will ever be due (none
// configured, or a restart is pending).
func (c *ContainerProbes) NextDue() (at time.Time, ok bool) {
	for _, k := range order {
		if !c.eligible(k) {
			continue
		}
		if t, due := c.trackers[k].NextDue(); due && (!ok || t.Before(at)) {
			at, ok = t, true
		}
	}
	return at, ok
}

// eligible says whether probe k exists, is not in flight, and may run
// (liveness and readiness wait for startup).
func (c *ContainerProbes) eligible(k Kind) bool {
	if c.trackers[k] == nil || c.inFlight[k] || c.restartPending() {
		return false
	}
	return k == Startup || c.Started()
}

// restartPending says whether a liveness or startup probe decided a
// restart; then nothing runs any more.
func (c *ContainerProbes) restartPending() bool {
	for _, k := range [...]Kind{Liveness, Startup} {
		if t := c.trackers[k]; t != nil && t.held && !t.State() {
			return true
		}
	}
	return false
}

// Record gives the result r of probe kind, run at now, and returns the
// outcome with Ready and Started filled for the whole container. A result
// for a kind the container does not have changes nothing.
func (c *ContainerProbes) Record(kind Kind, now time.Time, r Result) Outcome {
	if kind < 0 || int(kind) >= len(c.trackers) || c.trackers[kind] == nil {
		return Outcome{Ready: c.Ready(), Started: c.Started()}
	}
	c.inFlight[kind] = false
	o := c.trackers[kind].Observe(now, r)
	o.Ready, o.Started = c.Ready(), c.Started()
	return o
}
