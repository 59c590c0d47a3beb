package kubelet

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/agent/internal/clock"
	"github.com/shoal-dev/shoal/agent/internal/events"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/probe"
	"github.com/shoal-dev/shoal/dataplane/runtime"
)

// eventSink keeps the Events a recorder writes, by name.
type eventSink struct {
	mu   sync.Mutex
	objs map[string]*api.Event
}

func (s *eventSink) CreateEvent(_ context.Context, e *api.Event) (*api.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if errs := api.Validate(e); len(errs) > 0 {
		return nil, fmt.Errorf("%w: %v", events.ErrRejected, errs)
	}
	if _, ok := s.objs[e.Name]; ok {
		return nil, events.ErrAlreadyExists
	}
	c := *e
	s.objs[e.Name] = &c
	return &c, nil
}

func (s *eventSink) UpdateEvent(_ context.Context, e *api.Event) (*api.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *e
	s.objs[e.Name] = &c
	return &c, nil
}

func (s *eventSink) GetEvent(_ context.Context, _, name string) (*api.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.objs[name]; ok {
		c := *e
		return &c, nil
	}
	return nil, events.ErrNotFound
}

// reasons lists "reason fieldPath: message" of the Events about pod.
func (s *eventSink) reasons(pod string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.objs {
		if e.InvolvedObject.Name == pod {
			out = append(out, e.Reason+" "+e.InvolvedObject.FieldPath+": "+e.Message)
		}
	}
	sort.Strings(out)
	return out
}

func (s *eventSink) has(pod, reason, contains string) bool {
	for _, r := range s.reasons(pod) {
		if strings.HasPrefix(r, reason+" ") && strings.Contains(r, contains) {
			return true
		}
	}
	return false
}

// withEvents gives the node loop a recorder writing to a sink.
func withEvents(t *testing.T, sink *eventSink) func(*Config) {
	cfg := events.DefaultConfig()
	cfg.Host, cfg.Writer, cfg.Clock = "n1", sink, clock.Real{}
	rec, err := events.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return func(c *Config) { c.Events = rec.For("kubelet") }
}

// The node loop records a pod's life as Kubernetes' kubelet does:
// Pulling, Pulled, Created, Started for each container (fieldPath naming
// it), BackOff while a crashed container waits, Failed for an image that
// cannot be pulled, Killing when the pod is deleted.
func TestNodeLoopRecordsEvents(t *testing.T) {
	sink := &eventSink{objs: map[string]*api.Event{}}
	h := newNodeHarness(t, false, func(c *Config) {
		c.Backoff = BackoffConfig{Initial: time.Hour, Max: time.Hour, Reset: time.Hour}
		withEvents(t, sink)(c)
	})
	h.rt.badImages["reg/missing:1"] = true
	h.start()
	web := boundPod("web", "uid-web", api.Container{Name: "app", Image: "reg/app:1"})
	other := boundPod("other", "uid-other", api.Container{Name: "app", Image: "reg/app:1"})
	bad := boundPod("bad", "uid-bad", api.Container{Name: "app", Image: "reg/missing:1"})
	h.pods.Replace([]*api.Pod{web, other, bad})
	h.waitStatus("web", "Running", running)
	h.waitStatus("other", "Running", running)
	for _, want := range [][2]string{
		{"Pulling", `Pulling image "reg/app:1"`},
		{"Pulled", `Successfully pulled image "reg/app:1"`},
		{"Created", "Created container app"},
		{"Started", "Started container app"},
	} {
		h.waitFor(want[0]+" Event", func() bool { return sink.has("web", want[0], want[1]) })
	}
	if r := sink.reasons("web"); !strings.Contains(r[0], "spec.containers{app}") {
		t.Errorf("events %q lack the container's fieldPath", r)
	}
	h.waitFor("Failed pull Event", func() bool { return sink.has("bad", "Failed", `Failed to pull image "reg/missing:1"`) })

	// Two crashes: the second waits the (hour-long) back-off.
	h.rt.exit(runtime.ContainerID("uid-web", "app", 0), 1, false)
	h.waitStatus("web", "restart 1 running", func(st api.PodStatus) bool {
		return st.ContainerStatuses[0].RestartCount == 1 && st.ContainerStatuses[0].State.Running != nil
	})
	h.rt.exit(runtime.ContainerID("uid-web", "app", 1), 1, false)
	h.waitFor("BackOff Event", func() bool {
		return sink.has("web", "BackOff", "Back-off restarting failed container app in pod web_default(uid-web)")
	})

	h.pods.Put(markDeleted(other, time.Now(), 30))
	h.waitFor("the stop", func() bool { return len(h.rt.Calls("stop")) > 0 })
	h.waitFor("Killing Event", func() bool { return sink.has("other", "Killing", "Stopping container app") })
}

// A failing probe is recorded as Unhealthy, a volume whose ConfigMap is
// missing as FailedMount.
func TestNodeLoopRecordsProbeAndMountEvents(t *testing.T) {
	sink := &eventSink{objs: map[string]*api.Event{}}
	h := newNodeHarness(t, false, withEvents(t, sink))
	c := api.Container{Name: "app", Image: "reg/app:1",
		ReadinessProbe: &api.Probe{Exec: &api.ExecAction{Command: []string{"ready"}}, PeriodSeconds: 1}}
	mount := boundPod("mount", "uid-mount", api.Container{Name: "app", Image: "reg/app:1"})
	mount.Spec.Volumes = []api.Volume{{Name: "cfg", ConfigMap: &api.ConfigMapVolumeSource{Name: "absent"}}}
	h.start()
	h.pods.Replace([]*api.Pod{boundPod("probed", "uid-probed", c), mount})
	h.waitStatus("probed", "Ready", func(st api.PodStatus) bool { return running(st) && ready(st) })
	h.prober.set(probe.Readiness, true)
	h.waitFor("Unhealthy Event", func() bool { return sink.has("probed", "Unhealthy", "Readiness probe failed") })
	h.waitFor("FailedMount Event", func() bool { return sink.has("mount", "FailedMount", `configmap "absent"`) })
}
