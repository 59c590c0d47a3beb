package consensus

import (
	"github.com/hashicorp/raft"
)

// leaderObservations is the buffer of raft observations the node reads;
// raft drops an observation when it is full (the count is then low, never
// blocked).
const leaderObservations = 16

// observeLeaders tells Config.Observer each time the leader this node
// knows changes to another server, from raft's LeaderObservation (a change
// to "no leader" during an election is not counted, a new leader is). It
// stops at Shutdown.
func (n *Node) observeLeaders() {
	o := n.cfg.Observer
	if o == nil {
		return
	}
	ch := make(chan raft.Observation, leaderObservations)
	obs := raft.NewObserver(ch, false, func(ob *raft.Observation) bool {
		_, ok := ob.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	go func() {
		defer n.raft.DeregisterObserver(obs)
		var last raft.ServerID
		for {
			select {
			case ob := <-ch:
				lo := ob.Data.(raft.LeaderObservation)
				if lo.LeaderID != "" && lo.LeaderID != last {
					last = lo.LeaderID
					o.LeaderChanged()
				}
			case <-n.shutdownCh:
				return
			}
		}
	}()
}
