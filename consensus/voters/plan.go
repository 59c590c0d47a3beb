package voters

import (
	"cmp"
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
// a non-voter.
type Server struct {
	ID, Addr string
	Voter    bool
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
}

// ChangeType says what a Change does to the Raft configuration. The zero
// value is no change.
type ChangeType int

const (
	// AddVoter adds ID at Addr as a voter, or promotes it if it is already
	// a non-voter.
	AddVoter ChangeType = iota + 1
	// RemoveServer removes ID, voter or not, from the configuration.
	RemoveServer
)

func (t ChangeType) String() string {
	switch t {
	case 0:
		return "None"
	case AddVoter:
		return "AddVoter"
	case RemoveServer:
		return "RemoveServer"
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
// Two rules hold for every proposal, whatever step made it:
//   - the leader is never removed; moving leadership away from an agent that
//     should stop voting is the caller's job;
//   - after the change, the alive voters still reach the quorum of the new
//     configuration (see safe).
func Plan(in Input) (Change, bool) {
	if err := in.Validate(); err != nil {
		return Change{Reason: "invalid input: " + err.Error()}, false
	}
	v := newView(in)
	// The steps, in order of preference. Each one looks for its kind of
	// change and returns the first safe one; a step that finds a change it
	// must refuse leaves a note, and the notes explain an empty plan.
	steps := []func(*view) (Change, bool){
		// (a) Dead voters first: a voter dead past its grace weakens
		// every quorum, and until it is gone its replacement would make
		// an even configuration.
		(*view).removeDead,
		// (b) Servers that left gossip altogether departed for good; no
		// grace applies, there is nothing to wait for.
		(*view).removeDeparted,
		// (c) Grow back to the target before trimming, so a replacement
		// joins before the voter it replaces leaves.
		(*view).promote,
		// (d) Trim voters above the target last: a surplus costs
		// latency, not safety.
		(*view).removeSurplus,
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
	voters  map[string]bool
	target  int // EffectiveTarget
	notes   []string
}

func newView(in Input) *view {
	v := &view{in: in, members: map[string]Member{}, voters: map[string]bool{}}
	for _, m := range in.Members {
		v.members[m.ID] = m
	}
	v.servers = slices.Clone(in.Servers)
	slices.SortFunc(v.servers, func(a, b Server) int { return strings.Compare(a.ID, b.ID) })
	for _, s := range v.servers {
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

// seated says whether a voter counts toward the target: the leader (it keeps
// its seat until the caller hands leadership over), an alive eligible member,
// or a dead member within grace (it may come back; replacing it now would
// be the flapping DeadGrace is there to avoid). A voter that is ineligible,
// dead past grace or unknown to gossip holds no seat and gets replaced.
func (v *view) seated(id string) bool {
	if id == v.in.Leader {
		return true
	}
	m, ok := v.members[id]
	if !ok {
		return false
	}
	if m.Alive {
		return m.Eligible
	}
	_, past := v.deadPastGrace(id)
	return !past
}

// safe checks the quorum rule for c: after c, the alive voters must reach the
// quorum (n/2+1) of the new configuration of n voters. Raft commits a
// single-server change under the new configuration, so the new one is what
// must be able to make progress. A change that would leave no voter at all
// is never safe. The second result explains a refusal.
func (v *view) safe(c Change) (bool, string) {
	n, up := 0, 0
	for id := range v.voters {
		if c.Type == RemoveServer && id == c.ID {
			continue
		}
		n++
		if v.alive(id) {
			up++
		}
	}
	if c.Type == AddVoter && !v.voters[c.ID] {
		n++
		if v.alive(c.ID) {
			up++
		}
	}
	if n == 0 || up < Quorum(n) {
		return false, fmt.Sprintf("%s %s refused: it would leave %d alive of %d voters, below quorum %d",
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
		if !slices.Contains(v.notes, why) {
			v.notes = append(v.notes, why)
		}
	}
	return Change{}, false
}

// removeDead is step (a): remove voters dead longer than DeadGrace, the
// longest dead first, then non-voters dead as long (they hold no vote, but
// they are stale entries all the same).
//
// With 3 voters of which 2 are dead, removing a dead one leaves 2 voters with
// 1 alive, below quorum 2: it is refused, and so is every other change.
// That is the permanent loss of quorum; only the manual recovery command
// (rewriting the configuration on the survivor) gets out of it.
func (v *view) removeDead() (Change, bool) {
	type dead struct {
		s     Server
		since time.Time
		d     time.Duration
	}
	var ds []dead
	for _, s := range v.servers {
		if d, past := v.deadPastGrace(s.ID); past {
			ds = append(ds, dead{s, v.members[s.ID].Since, d})
		}
	}
	slices.SortStableFunc(ds, func(a, b dead) int {
		if a.s.Voter != b.s.Voter {
			if a.s.Voter {
				return -1
			}
			return 1
		}
		return cmp.Or(a.since.Compare(b.since), strings.Compare(a.s.ID, b.s.ID))
	})
	cs := make([]Change, 0, len(ds))
	for _, d := range ds {
		kind := "voter"
		if !d.s.Voter {
			kind = "non-voter"
		}
		cs = append(cs, Change{Type: RemoveServer, ID: d.s.ID, Addr: d.s.Addr,
			Reason: fmt.Sprintf("%s %s dead for %s > grace %s", kind, d.s.ID, round(d.d), v.in.DeadGrace)})
	}
	return v.firstSafe(cs)
}

// removeDeparted is step (b): remove servers gossip no longer knows at all.
// Non-voters go first since removing them never touches a quorum.
func (v *view) removeDeparted() (Change, bool) {
	var cs []Change
	for _, voter := range []bool{false, true} {
		for _, s := range v.servers {
			if _, known := v.members[s.ID]; known || s.ID == v.in.Leader || s.Voter != voter {
				continue
			}
			kind := "voter"
			if !s.Voter {
				kind = "non-voter"
			}
			cs = append(cs, Change{Type: RemoveServer, ID: s.ID, Addr: s.Addr,
				Reason: fmt.Sprintf("%s %s is no longer a gossip member: it departed", kind, s.ID)})
		}
	}
	return v.firstSafe(cs)
}

// promote is step (c): when fewer voters hold a seat than the target, add the
// best candidate. A candidate is alive for at least Stabilize, eligible, has
// a Raft address and is not a voter yet. The best one sits in the zone with
// the fewest seated voters (a zone with none wins), then has been alive the
// longest, then has the lowest ID.
func (v *view) promote() (Change, bool) {
	seated, zones := 0, map[string]int{}
	for id := range v.voters {
		if v.seated(id) {
			seated++
			zones[v.members[id].Zone]++
		}
	}
	if seated >= v.target {
		return Change{}, false
	}
	var cands []Member
	var dead, ineligible, young, noAddr int
	for _, m := range v.members {
		switch {
		case v.voters[m.ID]:
		case !m.Alive:
			dead++
		case !m.Eligible:
			ineligible++
		case v.in.Now.Sub(m.Since) < v.in.Stabilize:
			young++
		case m.RaftAddr == "":
			noAddr++
		default:
			cands = append(cands, m)
		}
	}
	if len(cands) == 0 {
		v.notes = append(v.notes, fmt.Sprintf(
			"%d seated voters < target %d, but no member can be promoted (%d dead, %d ineligible, %d alive < stabilize %s, %d without a raft address)",
			seated, v.target, dead, ineligible, young, v.in.Stabilize, noAddr))
		return Change{}, false
	}
	slices.SortFunc(cands, func(a, b Member) int {
		return cmp.Or(
			cmp.Compare(zones[a.Zone], zones[b.Zone]),
			a.Since.Compare(b.Since),
			strings.Compare(a.ID, b.ID))
	})
	best := cands[0]
	why := fmt.Sprintf("zone %s has no voter", zoneName(best.Zone))
	if n := zones[best.Zone]; n > 0 {
		why = fmt.Sprintf("zone %s has %d voters, the fewest; alive for %s", zoneName(best.Zone), n, round(v.in.Now.Sub(best.Since)))
	}
	c := Change{Type: AddVoter, ID: best.ID, Addr: best.RaftAddr,
		Reason: fmt.Sprintf("promote %s: %d seated voters < target %d; %s", best.ID, seated, v.target, why)}
	// Adding an alive voter never lowers the alive count, but it raises
	// the quorum, so a cluster already short of alive voters gets nothing.
	return v.firstSafe([]Change{c})
}

// removeSurplus is step (d): when there are more voters than the target,
// remove one, never the leader. Preference: one gossip no longer knows, then
// a dead one (longest dead first), then an ineligible one, then one from the
// zone holding the most voters, alive the shortest, highest ID: the mirror
// of promote, so the two never undo each other.
//
// A voter is surplus only above the configured target: when fewer agents
// are alive than the target (one of three restarting), the healthy voters
// keep their seats, even an even number of them, rather than leaving the
// whole store on fewer disks; the dead voter's successor is promoted when
// an agent is there to take it.
func (v *view) removeSurplus() (Change, bool) {
	if len(v.voters) <= v.target || len(v.voters) <= v.in.Target {
		return Change{}, false
	}
	zones := map[string]int{}
	for id := range v.voters {
		zones[v.members[id].Zone]++
	}
	rank := func(id string) int {
		m, ok := v.members[id]
		switch {
		case !ok:
			return 0
		case !m.Alive:
			return 1
		case !m.Eligible:
			return 2
		}
		return 3
	}
	var ids []string
	for id := range v.voters {
		if id != v.in.Leader {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int {
		ma, mb := v.members[a], v.members[b]
		r := cmp.Compare(rank(a), rank(b))
		if r != 0 || rank(a) == 0 {
			return cmp.Or(r, strings.Compare(a, b))
		}
		if rank(a) == 3 {
			// Most voters in the zone first, then alive the shortest.
			r = cmp.Or(cmp.Compare(zones[mb.Zone], zones[ma.Zone]), mb.Since.Compare(ma.Since))
			return cmp.Or(r, strings.Compare(b, a))
		}
		// Dead or ineligible: in that state the longest first.
		return cmp.Or(ma.Since.Compare(mb.Since), strings.Compare(a, b))
	})
	cs := make([]Change, 0, len(ids))
	for _, id := range ids {
		var why string
		switch rank(id) {
		case 0:
			why = "it is no longer a gossip member"
		case 1:
			why = fmt.Sprintf("it is dead for %s", round(v.in.Now.Sub(v.members[id].Since)))
		case 2:
			why = "it is not eligible to vote"
		default:
			why = fmt.Sprintf("zone %s holds the most voters (%d)", zoneName(v.members[id].Zone), zones[v.members[id].Zone])
		}
		addr := ""
		for _, s := range v.servers {
			if s.ID == id {
				addr = s.Addr
			}
		}
		cs = append(cs, Change{Type: RemoveServer, ID: id, Addr: addr,
			Reason: fmt.Sprintf("remove surplus voter %s: %d voters > target %d; %s", id, len(v.voters), v.target, why)})
	}
	if len(cs) == 0 {
		v.notes = append(v.notes, fmt.Sprintf("%d voters > target %d, but the only one is the leader", len(v.voters), v.target))
	}
	return v.firstSafe(cs)
}

// idleReason explains an empty plan.
func (v *view) idleReason() string {
	seated := 0
	for id := range v.voters {
		if v.seated(id) {
			seated++
		}
	}
	up := 0
	for id := range v.voters {
		if v.alive(id) {
			up++
		}
	}
	s := fmt.Sprintf("%d voters (%d alive, %d seated), target %d", len(v.voters), up, seated, v.target)
	if up < Quorum(len(v.voters)) {
		// No change can pass safe from here: this is the permanent loss
		// of quorum unless the dead voters come back.
		s += fmt.Sprintf("; alive voters below quorum %d: if the dead voters are gone for good, recover the survivor manually", Quorum(len(v.voters)))
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
