package voters

import (
	"fmt"
	"slices"
	"time"
)

// Replica is what the leader learnt of one server's Raft replica, by
// asking its agent (the way raft-autopilot's delegate fetches each
// server's stats): the agent's own view, not the leader's.
type Replica struct {
	// Reached: the agent answered. Err says why not.
	Reached bool
	Err     string
	// RunsRaft: the agent runs a Raft node. An agent in the configuration
	// that runs none holds no replica at all.
	RunsRaft bool
	// Term and LastIndex are the replica's current term and last log
	// index; LastContact is how long ago it last heard from a leader
	// (negative: never).
	Term, LastIndex uint64
	LastContact     time.Duration
}

// Limits are the thresholds of Judge.
type Limits struct {
	// LastContact: a replica that has not heard from the leader for
	// longer is cut off from it.
	LastContact time.Duration
	// MaxTrailingLogs: a replica whose log trails the leader's last index
	// by more entries has not caught up.
	MaxTrailingLogs uint64
}

// Validate names the limit that is out of range.
func (l Limits) Validate() error {
	if l.LastContact <= 0 {
		return fmt.Errorf("LastContact must be positive, got %s", l.LastContact)
	}
	return nil
}

// Judge says why r is not a healthy replica for a leader at leaderTerm
// whose log ends at leaderLast ("" when it is healthy), and whether it
// holds no replica at all. The rules are raft-autopilot's: the replica
// answers, follows the leader's term, has heard from it recently, and its
// log trails by at most MaxTrailingLogs.
func Judge(r Replica, leaderTerm, leaderLast uint64, lim Limits) (why string, noReplica bool) {
	switch {
	case !r.Reached:
		return "its agent does not answer: " + r.Err, false
	case !r.RunsRaft:
		return "its agent runs no raft (a wiped disk, or a log wiped on demotion)", true
	case r.Term != leaderTerm:
		return fmt.Sprintf("it is at term %d, the leader at %d", r.Term, leaderTerm), false
	case r.LastContact < 0:
		return "it has never heard from the leader", false
	case r.LastContact > lim.LastContact:
		return fmt.Sprintf("it last heard from the leader %s ago > %s", round(r.LastContact), lim.LastContact), false
	case r.LastIndex+lim.MaxTrailingLogs < leaderLast:
		return fmt.Sprintf("its log ends at %d, %d entries behind the leader's %d > %d", r.LastIndex, leaderLast-r.LastIndex, leaderLast, lim.MaxTrailingLogs), false
	}
	return "", false
}

// After is in as it would be once c is applied: the configuration changed,
// nothing else. A server added or promoted by c is taken as healthy.
func After(in Input, c Change) Input {
	servers := slices.Clone(in.Servers)
	i := slices.IndexFunc(servers, func(s Server) bool { return s.ID == c.ID })
	switch c.Type {
	case RemoveServer:
		if i >= 0 {
			servers = slices.Delete(servers, i, i+1)
		}
	case AddVoter, AddNonvoter:
		s := Server{ID: c.ID, Addr: c.Addr, Voter: c.Type == AddVoter}
		if i < 0 {
			servers = append(servers, s)
		} else {
			servers[i] = s
		}
	}
	in.Servers = servers
	return in
}

// Check applies Plan's quorum rule to a change asked for by hand (an
// operator's add or remove): it says why c must be refused, "" when it is
// safe. The leader is not removed by hand either: stopping its agent hands
// leadership over first.
func Check(in Input, c Change) string {
	if err := in.Validate(); err != nil {
		return "invalid input: " + err.Error()
	}
	v := newView(in)
	_, inConfig := v.byID[c.ID]
	switch c.Type {
	case RemoveServer:
		if !inConfig {
			return fmt.Sprintf("%s is not in the raft configuration", c.ID)
		}
		if c.ID == in.Leader {
			return fmt.Sprintf("%s is the leader: stop its agent instead (on SIGTERM it hands leadership over, then gives up its seat)", c.ID)
		}
	case AddVoter, AddNonvoter:
		if v.voters[c.ID] {
			return fmt.Sprintf("%s is already a voter", c.ID)
		}
	default:
		return fmt.Sprintf("unknown change %v", c.Type)
	}
	if ok, why := v.safe(c); !ok {
		return why
	}
	return ""
}
