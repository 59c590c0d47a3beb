package hollow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/network"
	"github.com/shoal-dev/shoal/dataplane/runtime"
	"github.com/shoal-dev/shoal/dataplane/volume"
)

// Runtime is an in-memory container runtime: images are always present,
// and a started container reports Running after StartDelay (Start blocks
// that long, as a container runtime's start does). Containers never exit
// on their own.
type Runtime struct {
	StartDelay time.Duration

	mu         sync.Mutex
	containers map[string]*runtime.Status
	events     chan runtime.Event
}

// NewRuntime returns an empty Runtime whose starts take delay.
func NewRuntime(delay time.Duration) *Runtime {
	return &Runtime{StartDelay: delay, containers: map[string]*runtime.Status{}, events: make(chan runtime.Event, 64)}
}

// EnsureImage pretends every image is present.
func (r *Runtime) EnsureImage(ctx context.Context, ref, pullPolicy string) (runtime.Image, error) {
	return runtime.Image{Ref: ref}, nil
}

// Create records a container in state created.
func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.containers[spec.ID]; ok {
		return nil
	}
	labels := make(map[string]string, len(spec.Labels))
	for k, v := range spec.Labels {
		labels[k] = v
	}
	r.containers[spec.ID] = &runtime.Status{ID: spec.ID, Labels: labels, Image: spec.Image,
		State: runtime.StateCreated, LogPath: spec.LogPath, CreatedAt: time.Now()}
	return nil
}

// Start waits StartDelay (or ctx), then marks the container running.
func (r *Runtime) Start(ctx context.Context, id string) error {
	if r.StartDelay > 0 {
		t := time.NewTimer(r.StartDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[id]
	switch {
	case c == nil:
		return runtime.ErrNotFound
	case c.State == runtime.StateExited:
		return runtime.ErrExited
	case c.State == runtime.StateCreated:
		c.State, c.StartedAt, c.PID = runtime.StateRunning, time.Now(), 1
	}
	return nil
}

// Stop marks a running container exited (143, as after SIGTERM).
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	c := r.containers[id]
	if c == nil || c.State != runtime.StateRunning {
		r.mu.Unlock()
		return nil
	}
	now := time.Now()
	c.State, c.ExitCode, c.FinishedAt = runtime.StateExited, 143, now
	r.mu.Unlock()
	select {
	case r.events <- runtime.Event{ID: id, Type: runtime.EventExit, ExitCode: 143, At: now}:
	default: // the loop lists periodically anyway
	}
	return nil
}

// Remove forgets a container.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.containers, id)
	return nil
}

// List returns a copy of every container's status.
func (r *Runtime) List(ctx context.Context) ([]runtime.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]runtime.Status, 0, len(r.containers))
	for _, c := range r.containers {
		out = append(out, *c)
	}
	return out, nil
}

// Events returns the exit events of Stop.
func (r *Runtime) Events(ctx context.Context) (<-chan runtime.Event, error) { return r.events, nil }

// Exec is not supported by a hollow node.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, stdout, stderr io.Writer) (int, error) {
	return 0, errors.New("hollow: exec is not supported")
}

// ExecStream is not supported either.
func (r *Runtime) ExecStream(ctx context.Context, id string, e runtime.ExecIO) (int, error) {
	return 0, errors.New("hollow: exec is not supported")
}

// Network hands out addresses of one node's pod CIDR without touching
// the host.
type Network struct {
	mu   sync.Mutex
	ips  map[string]net.IP
	pods map[string]network.PodRef
	next int
}

// NewNetwork returns a Network handing out 10.255.x.y addresses (fake:
// nothing routes them).
func NewNetwork() *Network {
	return &Network{ips: map[string]net.IP{}, pods: map[string]network.PodRef{}, next: 2}
}

// Setup gives pod an address.
func (n *Network) Setup(ctx context.Context, pod network.PodRef) (network.PodNetwork, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ip, ok := n.ips[pod.UID]
	if !ok {
		if n.next >= 1<<16-1 {
			return network.PodNetwork{}, fmt.Errorf("hollow: no address left for pod %s", pod.UID)
		}
		ip = net.IPv4(10, 255, byte(n.next>>8), byte(n.next))
		n.next++
		n.ips[pod.UID] = ip
	}
	n.pods[pod.UID] = pod
	return network.PodNetwork{NetNSPath: "/hollow/" + pod.UID, IP: ip}, nil
}

// Teardown forgets pod.
func (n *Network) Teardown(ctx context.Context, pod network.PodRef) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.pods, pod.UID)
	delete(n.ips, pod.UID)
	return nil
}

// List returns the pods set up.
func (n *Network) List() ([]network.PodRef, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]network.PodRef, 0, len(n.pods))
	for _, p := range n.pods {
		out = append(out, p)
	}
	return out, nil
}

// Volumes prepares nothing: hollow pods' volumes are empty names.
type Volumes struct {
	mu   sync.Mutex
	pods map[string]bool
}

// NewVolumes returns an empty Volumes.
func NewVolumes() *Volumes { return &Volumes{pods: map[string]bool{}} }

// Setup records pod.
func (v *Volumes) Setup(pod *api.Pod, src volume.Source) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pods[pod.UID] = true
	return nil
}

// Prepare mounts nothing.
func (v *Volumes) Prepare(pod *api.Pod, c api.Container, src volume.Source) ([]volume.Mount, error) {
	return nil, nil
}

// Refresh changes nothing.
func (v *Volumes) Refresh(pod *api.Pod, src volume.Source) (bool, error) { return false, nil }

// Teardown forgets a pod.
func (v *Volumes) Teardown(podUID string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.pods, podUID)
	return nil
}

// ListPods returns the pods set up.
func (v *Volumes) ListPods() ([]string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]string, 0, len(v.pods))
	for uid := range v.pods {
		out = append(out, uid)
	}
	return out, nil
}
