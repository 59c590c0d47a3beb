package kubelet

import (
	"sync"

	"github.com/shoal-dev/shoal/agent/follow"
	"github.com/shoal-dev/shoal/api"
)

// PodSet is a PodSource fed by whoever watches the control plane: the
// store's watch on a voter, a Follower elsewhere (FollowHandler).
type PodSet struct {
	mu      sync.Mutex
	pods    map[string]*api.Pod // by UID
	synced  bool
	changes chan struct{}
}

// NewPodSet returns an empty, unsynced set.
func NewPodSet() *PodSet {
	return &PodSet{pods: map[string]*api.Pod{}, changes: make(chan struct{}, 1)}
}

func (s *PodSet) notify() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// Replace sets the whole set from a full list that is at least as recent
// as the control plane when the source started (a linearizable list, or
// any later one) and marks the set synced: from then on the node loop
// stops the pods missing from it.
func (s *PodSet) Replace(pods []*api.Pod) { s.replace(pods, true) }

func (s *PodSet) replace(pods []*api.Pod, synced bool) {
	s.mu.Lock()
	s.pods = make(map[string]*api.Pod, len(pods))
	for _, p := range pods {
		s.pods[p.UID] = p
	}
	s.synced = s.synced || synced
	s.mu.Unlock()
	s.notify()
}

// Put adds or replaces one pod.
func (s *PodSet) Put(p *api.Pod) {
	s.mu.Lock()
	s.pods[p.UID] = p
	s.mu.Unlock()
	s.notify()
}

// Delete removes the pod with uid.
func (s *PodSet) Delete(uid string) {
	s.mu.Lock()
	delete(s.pods, uid)
	s.mu.Unlock()
	s.notify()
}

// Pods implements PodSource.
func (s *PodSet) Pods() ([]*api.Pod, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*api.Pod, 0, len(s.pods))
	for _, p := range s.pods {
		out = append(out, p)
	}
	return out, s.synced
}

// Changes implements PodSource.
func (s *PodSet) Changes() <-chan struct{} { return s.changes }

// FollowHandler returns the handler to give Follower.Run (a Follower of
// pods with fieldSelector spec.nodeName=NODE): it keeps the set equal to
// the follower's mirror. The set counts as synced only once the follower
// has had its linearizable first list: a lagging replica's list never makes
// the node loop stop pods.
func (s *PodSet) FollowHandler(f *follow.Follower) func(follow.Event) {
	return func(ev follow.Event) {
		switch ev.Type {
		case follow.Resync:
			var pods []*api.Pod
			for _, o := range f.Objects() {
				if p, ok := o.(*api.Pod); ok {
					pods = append(pods, p)
				}
			}
			s.replace(pods, f.Synced())
		case "DELETED":
			if p, ok := ev.Object.(*api.Pod); ok {
				s.Delete(p.UID)
			}
		default:
			if p, ok := ev.Object.(*api.Pod); ok {
				s.Put(p)
			}
		}
	}
}
