package voters

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Candidate is an agent as seen by one that is not in a cluster yet.
// ClusterID is empty unless the agent advertises membership of a cluster.
type Candidate struct {
	ID        string
	Alive     bool
	ClusterID string
}

// Action is what DecideBootstrap tells the agent to do. The zero value is
// Wait, the one that is always safe.
type Action int

const (
	// Wait: do nothing yet and decide again when the view changes.
	Wait Action = iota
	// Bootstrap: form a new cluster with this agent as its only voter; the
	// voter manager adds the others afterwards.
	Bootstrap
	// Join: ask Decision.ClusterID's members to add this agent.
	Join
)

func (a Action) String() string {
	switch a {
	case Wait:
		return "Wait"
	case Bootstrap:
		return "Bootstrap"
	case Join:
		return "Join"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decision is the outcome of DecideBootstrap.
type Decision struct {
	Action    Action
	ClusterID string // for Join: the cluster to join
	// Conflict is set when alive agents advertise more than one cluster ID:
	// the agent still joins one, but two clusters exist and an operator
	// must merge them.
	Conflict bool
	Reason   string
}

// BootstrapInput is what DecideBootstrapFor decides from.
type BootstrapInput struct {
	Self       string      // this agent's ID
	Expect     int         // --bootstrap-expect
	Candidates []Candidate // the agents it sees (self among them or not)
	// ClusterID is the cluster id recorded in this agent's data dir, if
	// any: the agent belongs to that cluster and may only join it again.
	ClusterID string
	// Unreached lists the --join addresses at which no alive agent has
	// answered yet. Any of them may be a member of an existing cluster
	// that this agent cannot see yet.
	Unreached []string
}

// DecideBootstrapFor is DecideBootstrap with two more rules, checked first,
// that keep an agent from forming a second cluster:
//
//   - An agent whose data dir records a cluster id never bootstraps and
//     joins only that cluster: it waits until an alive candidate
//     advertises that id. (Members of other clusters are refused by
//     gossip before they get here.)
//   - An agent bootstraps only once every --join address has answered: an
//     address it cannot reach yet may be a member of the cluster the
//     operator meant it to join (a host added later, keeping the default
//     --bootstrap-expect, that sees other new hosts but not yet the
//     cluster). Joining a cluster it sees is not held back.
func DecideBootstrapFor(in BootstrapInput) Decision {
	if in.ClusterID != "" {
		for _, c := range in.Candidates {
			if c.Alive && c.ID != in.Self && c.ClusterID == in.ClusterID {
				return Decision{Action: Join, ClusterID: in.ClusterID,
					Reason: fmt.Sprintf("join cluster %s (recorded in the data dir) advertised by %s", in.ClusterID, c.ID)}
			}
		}
		return Decision{Action: Wait, Reason: fmt.Sprintf("this agent belongs to cluster %s (recorded in its data dir): waiting to see one of its members; it never bootstraps or joins another", in.ClusterID)}
	}
	d := DecideBootstrap(in.Self, in.Expect, in.Candidates)
	if d.Action == Bootstrap && len(in.Unreached) > 0 {
		us := slices.Clone(in.Unreached)
		slices.Sort(us)
		return Decision{Action: Wait, Reason: fmt.Sprintf("%s; but no agent has answered yet at --join %s, which may belong to an existing cluster: an agent bootstraps only once every --join address answered",
			d.Reason, strings.Join(us, ", "))}
	}
	return d
}

// DecideBootstrap decides, for the agent self with expect set by
// --bootstrap-expect, from the candidates it can see (self among them or
// not: self always counts as alive and in no cluster unless cands says it
// advertises one). The steps, in order:
//
//  1. An alive candidate advertises a cluster: join it. A cluster that exists
//     wins over forming a new one, whatever expect says. With several IDs,
//     take the one the most alive candidates advertise, then the lowest ID,
//     and set Conflict.
//  2. At least expect alive candidates in no cluster, and self has the lowest
//     ID among them: bootstrap. Every agent that sees the same set agrees on
//     who is lowest, so exactly one of them bootstraps. When expect equals the
//     number of agents started together, an agent can only reach expect by
//     seeing all of them, so only the lowest of all can ever bootstrap; with
//     more agents than expect, two disjoint partial views could each elect
//     their own lowest, which is why expect should be the number of agents
//     started together.
//  3. Otherwise wait, and say for what.
//
// Dead candidates count for nothing: a dead agent can neither bootstrap nor
// take part in a cluster we join through it. An expect below 1 or an empty
// self never bootstraps.
func DecideBootstrap(self string, expect int, cands []Candidate) Decision {
	if self == "" || expect < 1 {
		return Decision{Action: Wait, Reason: fmt.Sprintf("invalid input: self %q, expect %d (must be >= 1)", self, expect)}
	}
	// One entry per ID, merged so that input order cannot matter: alive if
	// any entry says so, and the lowest cluster ID any alive entry gives.
	byID := map[string]Candidate{self: {ID: self, Alive: true}}
	for _, c := range cands {
		if c.ID == "" || !c.Alive {
			continue
		}
		old, seen := byID[c.ID]
		if !seen || old.ClusterID == "" || (c.ClusterID != "" && c.ClusterID < old.ClusterID) {
			byID[c.ID] = c
		}
	}

	// Step 1: an existing cluster.
	advertisers := map[string][]string{}
	var free []string // alive, in no cluster
	for id, c := range byID {
		if c.ClusterID != "" {
			advertisers[c.ClusterID] = append(advertisers[c.ClusterID], id)
		} else {
			free = append(free, id)
		}
	}
	if len(advertisers) > 0 {
		clusters := make([]string, 0, len(advertisers))
		for cid, ids := range advertisers {
			slices.Sort(ids)
			clusters = append(clusters, cid)
		}
		slices.SortFunc(clusters, func(a, b string) int {
			return cmp.Or(cmp.Compare(len(advertisers[b]), len(advertisers[a])), strings.Compare(a, b))
		})
		pick := clusters[0]
		d := Decision{Action: Join, ClusterID: pick,
			Reason: fmt.Sprintf("join cluster %s advertised by %s", pick, strings.Join(advertisers[pick], ", "))}
		if len(clusters) > 1 {
			d.Conflict = true
			var others []string
			for _, cid := range clusters[1:] {
				others = append(others, fmt.Sprintf("%s (by %s)", cid, strings.Join(advertisers[cid], ", ")))
			}
			d.Reason += "; more than one cluster is visible, also " + strings.Join(others, ", ")
		}
		return d
	}

	// Step 2: enough free agents, and self the lowest of them.
	slices.Sort(free)
	if len(free) < expect {
		return Decision{Action: Wait, Reason: fmt.Sprintf("waiting for %d agents, see %d: %s", expect, len(free), strings.Join(free, ", "))}
	}
	if free[0] != self {
		return Decision{Action: Wait, Reason: fmt.Sprintf("%d agents ready (%s); %s has the lowest ID and bootstraps, then this agent joins",
			len(free), strings.Join(free, ", "), free[0])}
	}
	return Decision{Action: Bootstrap, Reason: fmt.Sprintf("%d agents ready (%s), expect %d; %s has the lowest ID",
		len(free), strings.Join(free, ", "), expect, self)}
}
