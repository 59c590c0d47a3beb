package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/shoal-dev/shoal/agent/internal/events"
	"github.com/shoal-dev/shoal/agent/internal/metrics"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/network"
	"github.com/shoal-dev/shoal/dataplane/probe"
	"github.com/shoal-dev/shoal/dataplane/runtime"
	"github.com/shoal-dev/shoal/dataplane/volume"
)

// NodeRuntime is what the node loop calls of the container runtime
// (*runtime.Runtime).
type NodeRuntime interface {
	EnsureImage(ctx context.Context, ref, pullPolicy string) (runtime.Image, error)
	Create(ctx context.Context, spec runtime.ContainerSpec) error
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, grace time.Duration) error
	Remove(ctx context.Context, id string) error
	List(ctx context.Context) ([]runtime.Status, error)
	Events(ctx context.Context) (<-chan runtime.Event, error)
	Exec(ctx context.Context, id string, cmd []string, stdout, stderr io.Writer) (int, error)
	ExecStream(ctx context.Context, id string, e runtime.ExecIO) (int, error)
}

// Attacher is what attach calls of a NodeRuntime that has it
// (*runtime.Runtime); without it, attach follows the container's log file
// (output only).
type Attacher interface {
	Attach(ctx context.Context, id string, a runtime.AttachIO) error
}

// PodNetworks is what the node loop calls of the pod network
// (*network.Network).
type PodNetworks interface {
	Setup(ctx context.Context, pod network.PodRef) (network.PodNetwork, error)
	Teardown(ctx context.Context, pod network.PodRef) error
	List() ([]network.PodRef, error)
}

// PodVolumes is what the node loop calls of the volume manager
// (*volume.Manager).
type PodVolumes interface {
	Setup(pod *api.Pod, src volume.Source) error
	Prepare(pod *api.Pod, c api.Container, src volume.Source) ([]volume.Mount, error)
	Refresh(pod *api.Pod, src volume.Source) (bool, error)
	Teardown(podUID string) error
	ListPods() ([]string, error)
}

// PodProber runs one probe (*probe.Prober).
type PodProber interface {
	Run(ctx context.Context, pr *api.Probe, target probe.Target) probe.Result
}

// PodSource yields the pods bound to this node: in production the agent's
// store (voters) or a Follower (others) with fieldSelector
// spec.nodeName=NODE; see PodSet.
type PodSource interface {
	// Pods returns the pods bound to this node (shared, read-only) and
	// whether the source has synced at least once with a linearizable read
	// (the control plane's state when the source started, or later; never
	// a lagging replica's). Until it has, the loop adopts what runs but
	// stops nothing; after, it stops every pod missing from Pods.
	Pods() (pods []*api.Pod, synced bool)
	// Changes is signalled (coalesced) when Pods may have changed.
	Changes() <-chan struct{}
}

// StatusWriter writes a pod's status subresource (pod.Status is the new
// status; the rest of pod is as the source gave it).
type StatusWriter interface {
	UpdatePodStatus(ctx context.Context, pod *api.Pod) error
}

// PodDeleter removes the object of a pod this node has finished
// terminating, for good: a DELETE with gracePeriodSeconds 0 and the pod's
// uid as a precondition. An object already gone, or replaced by another pod
// of the same name, counts as deleted (nil).
type PodDeleter interface {
	DeletePod(ctx context.Context, pod *api.Pod) error
}

// Config configures a Loop.
type Config struct {
	NodeName string // this node; pods bound elsewhere are stopped
	HostIP   string // reported as status.hostIP

	Runtime NodeRuntime
	Network PodNetworks
	Volumes PodVolumes
	Objects volume.Source // ConfigMaps and Secrets for env and volumes
	Pods    PodSource
	Status  StatusWriter
	// Deleter removes the objects of terminated pods; nil means Status
	// when it is a PodDeleter too, else nothing does (terminating pods
	// stay in the store until something else removes them).
	Deleter PodDeleter
	// Prober runs probes; nil means a probe.Prober whose exec probes run
	// through Runtime and whose network probes dial with ProbeDial.
	Prober PodProber
	// ProbeDial opens the connections of httpGet and tcpSocket probes and
	// of port-forwards; nil dials from the agent's own network namespace. An agent whose pods are
	// wired in another namespace dials from there (see NetNSDialer).
	ProbeDial func(ctx context.Context, network, addr string) (net.Conn, error)

	// LogDir is the runtime's log directory (runtime.Config.LogDir).
	LogDir string
	// ResolvConf, when set, gives the resolv.conf of a pod in a namespace
	// (the node's cluster DNS, its search domains); every container of a
	// pod with dnsPolicy ClusterFirst (the default) gets it mounted at
	// /etc/resolv.conf. The files live under ResolvDir.
	ResolvConf func(namespace string) []byte
	ResolvDir  string
	// LogMaxBytes and LogKeep: container logs are rotated at resync when
	// they reach LogMaxBytes, keeping LogKeep rotated files (0 = no rotation).
	LogMaxBytes int64
	LogKeep     int

	// HostPathAllow lists the host directories pods may mount as hostPath
	// volumes (see api.CheckHostPath); a pod with another hostPath is not
	// started. Empty: none.
	HostPathAllow []string

	// Backoff is the crash-loop and image-pull back-off.
	Backoff BackoffConfig
	// Resync is how often the runtime is listed again and every pod
	// reconsidered, whatever the events said.
	Resync time.Duration
	// Retry is how long a failed step (a missing ConfigMap, a CNI error)
	// waits before it is tried again.
	Retry time.Duration
	// PullTimeout bounds one image pull.
	PullTimeout time.Duration
	// MaxParallelStarts bounds how many of the node's pods may be in a
	// start step that costs the host processes and CPU at once: network
	// setup (the CNI plugins), container create and container start (a
	// shim and runc per container). Other pods' start steps wait for a
	// slot; image pulls (deduplicated per image) and everything that
	// stops or tears down never wait for one.
	MaxParallelStarts int
	// MaxParallelStatusWrites bounds how many of the node's pods may be
	// writing their status to the API at once; the others wait for a
	// slot. A node handed fifty pods otherwise sent fifty writes at once,
	// each needing a connection of its own: past the transport's idle
	// pool every one was a new TLS handshake (a quarter of the CPU of a
	// hollow run of 5,000 pods). Kubernetes' kubelet writes statuses from
	// one goroutine.
	MaxParallelStatusWrites int
	// Now is the clock (time.Now when nil); decisions take its value.
	Now func() time.Time
	// Logger: nil means slog.Default().
	Logger *slog.Logger
	// Events records the pod Events (Pulling, Started, BackOff...); nil
	// records none.
	Events *events.Emitter
	// Metrics, if set, records image pulls and pod start latencies.
	Metrics *metrics.NodeLoop
}

// DefaultConfig returns the production settings; the dependencies
// and NodeName must still be set.
func DefaultConfig() Config {
	return Config{
		LogMaxBytes: 10 << 20,
		LogKeep:     3,
		Backoff:     DefaultBackoff(),
		Resync:      10 * time.Second,
		Retry:       2 * time.Second,
		PullTimeout: 5 * time.Minute,

		MaxParallelStarts:       DefaultMaxParallelStarts,
		MaxParallelStatusWrites: DefaultMaxParallelStatusWrites,
	}
}

// DefaultMaxParallelStarts is MaxParallelStarts in production: every pod of
// a usual burst (a Deployment's replicas spread over a few hosts) starts
// at once, and a node handed a hundred pods does not spawn a hundred
// shims together.
const DefaultMaxParallelStarts = 16

// DefaultMaxParallelStatusWrites is MaxParallelStatusWrites in production:
// well under the agent transport's idle connections per host (32), so
// that status writes reuse connections.
const DefaultMaxParallelStatusWrites = 8

// TestConfig is DefaultConfig with short back-off and
// retries, for tests.
func TestConfig() Config {
	c := DefaultConfig()
	c.Backoff = BackoffConfig{Initial: 200 * time.Millisecond, Max: 2 * time.Second, Reset: 10 * time.Second}
	c.Resync = time.Second
	c.Retry = 200 * time.Millisecond
	c.PullTimeout = 30 * time.Second
	return c
}

// Validate reports the first configuration error, naming the field.
func (c Config) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("kubelet.Config.NodeName: must not be empty")
	case c.Runtime == nil:
		return errors.New("kubelet.Config.Runtime: must not be nil")
	case c.Network == nil:
		return errors.New("kubelet.Config.Network: must not be nil")
	case c.Volumes == nil:
		return errors.New("kubelet.Config.Volumes: must not be nil")
	case c.Pods == nil:
		return errors.New("kubelet.Config.Pods: must not be nil")
	case c.Status == nil:
		return errors.New("kubelet.Config.Status: must not be nil")
	case c.LogDir == "":
		return errors.New("kubelet.Config.LogDir: must not be empty")
	case c.ResolvConf != nil && c.ResolvDir == "":
		return errors.New("kubelet.Config.ResolvDir: must not be empty with ResolvConf")
	case c.Backoff.Initial <= 0 || c.Backoff.Max < c.Backoff.Initial || c.Backoff.Reset <= 0:
		return fmt.Errorf("kubelet.Config.Backoff: %+v needs 0 < Initial <= Max and Reset > 0", c.Backoff)
	case c.Resync <= 0:
		return fmt.Errorf("kubelet.Config.Resync: %v must be positive", c.Resync)
	case c.Retry <= 0:
		return fmt.Errorf("kubelet.Config.Retry: %v must be positive", c.Retry)
	case c.PullTimeout <= 0:
		return fmt.Errorf("kubelet.Config.PullTimeout: %v must be positive", c.PullTimeout)
	case c.MaxParallelStarts <= 0:
		return fmt.Errorf("kubelet.Config.MaxParallelStarts: %d must be positive", c.MaxParallelStarts)
	case c.MaxParallelStatusWrites <= 0:
		return fmt.Errorf("kubelet.Config.MaxParallelStatusWrites: %d must be positive", c.MaxParallelStatusWrites)
	}
	if err := api.CheckHostPathAllow(c.HostPathAllow); err != nil {
		return fmt.Errorf("kubelet.Config.HostPathAllow: %v", err)
	}
	return nil
}
