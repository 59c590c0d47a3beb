package voters

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Member is one agent as gossip sees it.
type Member struct {
	ID       string // node name, which is also its Raft server ID
	RaftAddr string
	Zone     string
	Alive    bool
	// Since is when the member entered its current alive or dead state.
	Since time.Time
	// Eligible says the member may hold a vote (it is not draining or
	// leaving).
	Eligible bool
}

// Server is one entry of the current Raft configuration. Voter is false for
// a non-voter (a server being staged: it receives the log but holds no
// vote until it has caught up).
type Server struct {
	ID, Addr string
	Voter    bool
	// Unhealthy says why the leader judges this server's replica unfit
	// (see Judge): empty when it is healthy. Gossip liveness alone is not
	// health: an agent can be alive and still hold no usable replica.
	Unhealthy string
	// UnhealthySince is when the current unhealthy spell began.
	UnhealthySince time.Time
	// NoReplica: the agent runs no Raft at all (it advertises the
	// non-voter role: its disk was wiped, or it wiped its log on a
	// demotion while the configuration still held it). It holds nothing
	// the cluster needs, so removing it costs no data.
	NoReplica bool
}

// Input is everything Plan looks at. The caller fills it from gossip, from
// the Raft configuration and from its clock.
type Input struct {
	Now     time.Time
	Leader  string // ID of the current leader, the caller itself
	Members []Member
	Servers []Server
	// Target is the desired number of voters: odd and at least 1. Plan
	// aims at EffectiveTarget, which also depends on how many agents can
	// vote.
	Target int
	// DeadGrace is how long a voter may be dead in gossip before it loses
	// its seat and is replaced.
	DeadGrace time.Duration
	// Stabilize is how long a member must have been alive before it is
	// promoted, so that a flapping agent does not become a voter.
	Stabilize time.Duration
	// LeaderSince is when the caller became the leader, SettledAt when it
	// first saw gossip settled since then (zero: not yet), and Settle the
	// stabilisation period after that. Until SettledAt+Settle, Plan only
	// stages non-voters: a leader fresh from a full restart may not yet
	// see every agent, and must not take the ones it misses for gone. A
	// zero LeaderSince turns the wait off (the caller does not track it).
	LeaderSince, SettledAt time.Time
	Settle                 time.Duration
}

// ChangeType says what a Change does to the Raft configuration. The zero
// value is no change.
type ChangeType int

const (
	// AddVoter promotes ID, a non-voter of the configuration whose log
	// has caught up, to a voter (Plan never adds a voter in one step).
	AddVoter ChangeType = iota + 1
	// RemoveServer removes ID, voter or not, from the configuration.
	RemoveServer
	// AddNonvoter stages ID at Addr: it joins the configuration without
	// a vote and receives the log; AddVoter follows once it has caught
	// up, so that a new voter never counts toward a quorum with an empty
	// log.
	AddNonvoter
)

func (t ChangeType) String() string {
	switch t {
	case 0:
		return "None"
	case AddVoter:
		return "AddVoter"
	case RemoveServer:
		return "RemoveServer"
	case AddNonvoter:
		return "AddNonvoter"
	}
	return fmt.Sprintf("ChangeType(%d)", int(t))
}

// Change is one membership change and the sentence that justifies it.
type Change struct {
	Type     ChangeType
	ID, Addr string
	Reason   string
}

func (c Change) String() string {
	if c.Type == 0 {
		return "no change: " + c.Reason
	}
	return fmt.Sprintf("%s %s (%s): %s", c.Type, c.ID, c.Addr, c.Reason)
}

// Quorum is the number of voters a configuration of n voters needs to
// commit anything: a strict majority.
func Quorum(n int) int { return n/2 + 1 }

// EffectiveTarget is the number of voters to aim for: the largest odd number
// not above target nor above eligibleAlive, and at least 1. An even count
// adds a voter to every quorum without surviving one more failure, so it is
// never the aim (it happens only in passing, between two single changes).
func EffectiveTarget(target, eligibleAlive int) int {
	n := min(target, eligibleAlive)
	if n%2 == 0 {
		n--
	}
	return max(n, 1)
}

// Validate reports every field of in that Plan cannot work with.
func (in Input) Validate() error {
	var errs []error
	if in.Target < 1 || in.Target%2 == 0 {
		errs = append(errs, fmt.Errorf("Target must be odd and >= 1, got %d", in.Target))
	}
	if in.Now.IsZero() {
		errs = append(errs, errors.New("Now is not set"))
	}
	if in.Leader == "" {
		errs = append(errs, errors.New("Leader is empty"))
	}
	if in.DeadGrace < 0 {
		errs = append(errs, fmt.Errorf("DeadGrace is negative: %s", in.DeadGrace))
	}
	if in.Stabilize < 0 {
		errs = append(errs, fmt.Errorf("Stabilize is negative: %s", in.Stabilize))
	}
	if in.Settle < 0 {
		errs = append(errs, fmt.Errorf("Settle is negative: %s", in.Settle))
	}
	seen := map[string]bool{}
	for i, m := range in.Members {
		switch {
		case m.ID == "":
			errs = append(errs, fmt.Errorf("Members[%d].ID is empty", i))
		case seen[m.ID]:
			errs = append(errs, fmt.Errorf("Members[%d].ID %q appears twice", i, m.ID))
		}
		seen[m.ID] = true
	}
	clear(seen)
	for i, s := range in.Servers {
		switch {
		case s.ID == "":
			errs = append(errs, fmt.Errorf("Servers[%d].ID is empty", i))
		case seen[s.ID]:
			errs = append(errs, fmt.Errorf("Servers[%d].ID %q appears twice", i, s.ID))
		}
		seen[s.ID] = true
	}
	return errors.Join(errs...)
}

// Plan proposes the next single change to the Raft configuration, or none.
// The caller applies it, reads the configuration again and calls Plan again:
// one change at a time keeps every step easy to check for safety.
//
// When it returns false, Change.Reason still says why nothing is proposed
// (for example that the cluster has lost quorum for good), so the loop can
// log it. An input that fails Validate gets no change.
//
// Rules that hold for every proposal, whatever step made it:
//   - the leader is never removed; moving leadership away from an agent that
//     should stop voting is the caller's job;
//   - after the change, the healthy voters still reach the quorum of the new
//     configuration (see safe);
//   - a voter is only ever made from a staged non-voter whose log has caught
//     up (AddNonvoter first, AddVoter later), and a voter that lost its seat
//     is removed only once its successor votes, unless no successor can be
//     had and the lost one holds no replica at all.
func Plan(in Input) (Change, bool) {
	if err := in.Validate(); err != nil {
		return Change{Reason: "invalid input: " + err.Error()}, false
	}
	v := newView(in)
	if why, waiting := v.settling(); waiting {
		// Staging a non-voter changes no quorum and lets its log catch
		// up meanwhile; everything else waits.
		if c, ok := v.promote(); ok && c.Type == AddNonvoter {
			return c, true
		}
		return Change{Reason: why + "; " + v.idleReason()}, false
	}
	// The steps, in order of preference. Each one looks for its kind of
	// change and returns the first safe one; a step that finds a change it
	// must refuse leaves a note, and the notes explain an empty plan.
	steps := []func(*view) (Change, bool){
		// (a) Non-voters dead past grace, gone from gossip, or running
		// no Raft: stale entries whose removal touches no quorum.
		(*view).removeStaleNonvoters,
		// (b) Grow back to the target before anything leaves: stage a
		// successor, then promote it once its log has caught up.
		(*view).promote,
		// (c) Voters above the target, the unseated ones (dead, gone,
		// unhealthy) first: a dead voter's successor is already in.
		(*view).removeSurplus,
		// (d) A voter that holds no replica and cannot get a successor
		// (no other agent to take its seat): remove it, so that it can
		// be staged again from scratch.
		(*view).removeGhost,
		// (z) Every seat taken but a zone holds two voters while an
		// agent able to vote sits in a zone with none: stage it, then
		// promote it; (c) then removes a voter of the crowded zone.
		(*view).spreadZones,
		// (e) A staged non-voter no longer needed (the voter it was to
		// replace came back).
		(*view).removeUnneededNonvoter,
	}
	for _, step := range steps {
		if c, ok := step(v); ok {
			return c, true
		}
	}
	return Change{Reason: v.idleReason()}, false
}

// view is Input indexed for the steps, plus the notes they leave.
type view struct {
	in      Input
	members map[string]Member
	servers []Server // sorted by ID, so no result depends on input order
	byID    map[string]Server
	voters  map[string]bool
	target  int // EffectiveTarget
	notes   []string
	// successor: promote found a staged non-voter or a candidate, so a
	// voter that lost its seat is replaced rather than just removed.
	successor bool
	// keep: non-voters spreadZones staged for a zone without a voter,
	// which removeUnneededNonvoter must leave while they catch up.
	keep map[string]bool
}

func newView(in Input) *view {
	v := &view{in: in, members: map[string]Member{}, voters: map[string]bool{}, byID: map[string]Server{}, keep: map[string]bool{}}
	for _, m := range in.Members {
		v.members[m.ID] = m
	}
	v.servers = slices.Clone(in.Servers)
	slices.SortFunc(v.servers, func(a, b Server) int { return strings.Compare(a.ID, b.ID) })
	for _, s := range v.servers {
		v.byID[s.ID] = s
		if s.Voter {
			v.voters[s.ID] = true
		}
	}
	// The agents that could hold a vote: every alive eligible member, plus
	// every voter that holds its seat even though it is not one (the
	// leader, a voter dead but within grace). Counting the latter keeps a
	// dead voter within grace from shrinking the target under it.
	population := 0
	for _, m := range v.members {
		if m.Alive && m.Eligible {
			population++
		}
	}
	for id := range v.voters {
		if m, ok := v.members[id]; ok && m.Alive && m.Eligible {
			continue // counted above
		}
		if v.seated(id) {
			population++
		}
	}
	v.target = EffectiveTarget(in.Target, population)
	return v
}

// settling says whether changes other than staging must still wait after
// a change of leadership, and why.
func (v *view) settling() (string, bool) {
	in := v.in
	switch {
	case in.LeaderSince.IsZero():
		return "", false
	case in.SettledAt.IsZero():
		return fmt.Sprintf("waiting for gossip to settle (leader for %s)", round(in.Now.Sub(in.LeaderSince))), true
	case in.Now.Sub(in.SettledAt) < in.Settle:
		return fmt.Sprintf("gossip settled %s ago, stabilising for %s", round(in.Now.Sub(in.SettledAt)), in.Settle), true
	}
	return "", false
}

// alive: the leader is alive by definition (it is the one calling Plan);
// anyone else is alive if gossip says so. A server gossip does not know is
// not alive.
func (v *view) alive(id string) bool {
	if id == v.in.Leader {
		return true
	}
	m, ok := v.members[id]
	return ok && m.Alive
}

// up: alive and, for a server of the configuration, healthy in Raft. Only
// these count toward a quorum: a voter alive in gossip with no usable
// replica cannot help commit anything.
func (v *view) up(id string) bool {
	if id == v.in.Leader {
		return true
	}
	return v.alive(id) && v.byID[id].Unhealthy == ""
}

// deadPastGrace: gossip knows the member and has seen it dead for longer than
// DeadGrace.
func (v *view) deadPastGrace(id string) (time.Duration, bool) {
	m, ok := v.members[id]
	if !ok || m.Alive || id == v.in.Leader {
		return 0, false
	}
	d := v.in.Now.Sub(m.Since)
	return d, d > v.in.DeadGrace
}

// unhealthyPastGrace: alive in gossip but unhealthy in Raft for longer than
// DeadGrace (a voter catching up after a restart gets the same grace as one
// that is briefly dead).
func (v *view) unhealthyPastGrace(id string) (time.Duration, bool) {
	s, ok := v.byID[id]
	if !ok || s.Unhealthy == "" || id == v.in.Leader || !v.alive(id) {
		return 0, false
	}
	d := v.in.Now.Sub(s.UnhealthySince)
	return d, d > v.in.DeadGrace
}

// seated says whether a voter counts toward the target: the leader (it keeps
// its seat until the caller hands leadership over), an alive eligible member
// healthy in Raft or unhealthy within grace, or a dead member within grace
// (it may come back; replacing it now would be the flapping DeadGrace is
// there to avoid). A voter that is ineligible, dead or unhealthy past grace,
// or unknown to gossip holds no seat and gets a successor.
func (v *view) seated(id string) bool {
	if id == v.in.Leader {
		return true
	}
	m, ok := v.members[id]
	if !ok {
		return false
	}
	if m.Alive {
		_, past := v.unhealthyPastGrace(id)
		return m.Eligible && !past
	}
	_, past := v.deadPastGrace(id)
	return !past
}

// safe checks the quorum rule for c: after c, the voters that are up (alive
// and healthy) must reach the quorum (n/2+1) of the new configuration of n
// voters. Raft commits a single-server change under the new configuration,
// so the new one is what must be able to make progress. A change that would
// leave no voter at all is never safe. The second result explains a refusal.
func (v *view) safe(c Change) (bool, string) {
	n, up := 0, 0
	for id := range v.voters {
		if c.Type == RemoveServer && id == c.ID {
			continue
		}
		n++
		if v.up(id) {
			up++
		}
	}
	if c.Type == AddVoter && !v.voters[c.ID] {
		n++
		if v.up(c.ID) {
			up++
		}
	}
	if n == 0 || up < Quorum(n) {
		return false, fmt.Sprintf("%s %s refused: it would leave %d healthy of %d voters, below quorum %d",
			c.Type, c.ID, up, n, Quorum(n))
	}
	return true, ""
}

// firstSafe returns the first change of cs that passes safe, and notes the
// refusals met on the way.
func (v *view) firstSafe(cs []Change) (Change, bool) {
	for _, c := range cs {
		ok, why := v.safe(c)
		if ok {
			return c, true
		}
		v.note(why)
	}
	return Change{}, false
}

func (v *view) note(s string) {
	if !slices.Contains(v.notes, s) {
		v.notes = append(v.notes, s)
	}
}

// idleReason explains an empty plan.
func (v *view) idleReason() string {
	seated, up, alive := 0, 0, 0
	for id := range v.voters {
		if v.seated(id) {
			seated++
		}
		if v.alive(id) {
			alive++
		}
		if v.up(id) {
			up++
		}
	}
	s := fmt.Sprintf("%d voters (%d alive, %d seated), target %d", len(v.voters), alive, seated, v.target)
	if up < alive {
		s += fmt.Sprintf("; %d alive but unhealthy in raft", alive-up)
	}
	if up < Quorum(len(v.voters)) {
		// No change can pass safe from here: this is the permanent loss
		// of quorum unless the dead voters come back.
		s += fmt.Sprintf("; healthy voters below quorum %d: if the dead voters are gone for good, recover the survivor manually", Quorum(len(v.voters)))
	}
	if len(v.notes) > 0 {
		s += "; " + strings.Join(v.notes, "; ")
	}
	return s
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func zoneName(z string) string {
	if z == "" {
		return `""`
	}
	return z
}
