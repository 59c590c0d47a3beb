package voters

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The steps of Plan. Each returns its first safe change, or none and
// perhaps a note.

// removeStaleNonvoters is step (a): remove non-voters that gossip no
// longer knows, that are dead past grace, that may not vote (leaving), or
// that run no Raft past grace. They hold no vote, so their removal touches
// no quorum. Gone from gossip first, then the longest dead, then by ID.
func (v *view) removeStaleNonvoters() (Change, bool) {
	type stale struct {
		s     Server
		rank  int
		since time.Time
		why   string
	}
	var ss []stale
	for _, s := range v.servers {
		if s.Voter || s.ID == v.in.Leader {
			continue
		}
		m, known := v.members[s.ID]
		switch {
		case !known:
			ss = append(ss, stale{s, 0, time.Time{}, fmt.Sprintf("non-voter %s is no longer a gossip member: it departed", s.ID)})
		case !m.Alive:
			if d, past := v.deadPastGrace(s.ID); past {
				ss = append(ss, stale{s, 1, m.Since, fmt.Sprintf("non-voter %s dead for %s > grace %s", s.ID, round(d), v.in.DeadGrace)})
			}
		case !m.Eligible:
			ss = append(ss, stale{s, 2, m.Since, fmt.Sprintf("non-voter %s is not eligible to vote", s.ID)})
		case s.NoReplica:
			if d, past := v.unhealthyPastGrace(s.ID); past {
				ss = append(ss, stale{s, 3, s.UnhealthySince, fmt.Sprintf("non-voter %s runs no raft for %s > grace %s", s.ID, round(d), v.in.DeadGrace)})
			}
		}
	}
	slices.SortStableFunc(ss, func(a, b stale) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), a.since.Compare(b.since), strings.Compare(a.s.ID, b.s.ID))
	})
	cs := make([]Change, 0, len(ss))
	for _, x := range ss {
		cs = append(cs, Change{Type: RemoveServer, ID: x.s.ID, Addr: x.s.Addr, Reason: x.why})
	}
	return v.firstSafe(cs)
}

// seatedZones counts the seated voters, overall and per zone.
func (v *view) seatedZones() (int, map[string]int) {
	seated, zones := 0, map[string]int{}
	for id := range v.voters {
		if v.seated(id) {
			seated++
			zones[v.members[id].Zone]++
		}
	}
	return seated, zones
}

// promote is step (b): when fewer voters hold a seat than the target, grow
// in two kinds of change. First candidates are staged as non-voters
// (AddNonvoter); once the caller judges a replica healthy (its log has
// caught up), it is promoted (AddVoter). A voter with an empty log would
// count toward every quorum without holding what was committed: with the
// leader gone right after, the other two of three could not elect.
//
// A candidate is alive for at least Stabilize, eligible, has a Raft address
// and is not in the configuration yet. The best one sits in the zone with
// the fewest seated voters (a zone with none wins), then has been alive the
// longest, then has the lowest ID. Up to as many are staged as there are
// seats to fill.
func (v *view) promote() (Change, bool) {
	seated, zones := v.seatedZones()
	if seated >= v.target {
		return Change{}, false
	}
	order := func(a, b Member) int {
		return cmp.Or(
			cmp.Compare(zones[a.Zone], zones[b.Zone]),
			a.Since.Compare(b.Since),
			strings.Compare(a.ID, b.ID))
	}
	why := func(m Member) string {
		if n := zones[m.Zone]; n > 0 {
			return fmt.Sprintf("zone %s has %d voters, the fewest; alive for %s", zoneName(m.Zone), n, round(v.in.Now.Sub(m.Since)))
		}
		return fmt.Sprintf("zone %s has no voter", zoneName(m.Zone))
	}

	// The staged: non-voters of the configuration that may vote.
	var staged []Member
	for _, s := range v.servers {
		m, ok := v.members[s.ID]
		if s.Voter || s.NoReplica || !ok || !m.Alive || !m.Eligible || m.RaftAddr == "" {
			continue
		}
		staged = append(staged, m)
	}
	slices.SortFunc(staged, order)
	// The candidates: members not in the configuration at all.
	var cands []Member
	var dead, ineligible, young, noAddr int
	for _, m := range v.members {
		_, inConfig := v.byID[m.ID]
		switch {
		case inConfig:
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
	// Candidates are spread over zones counting the staged ones as
	// seated already.
	for _, m := range staged {
		zones[m.Zone]++
	}
	slices.SortFunc(cands, order)
	for _, m := range staged {
		zones[m.Zone]--
	}
	v.successor = len(staged)+len(cands) > 0

	// Stage as many as there are seats to fill, then promote them one
	// right after the other once they have all caught up: a cluster
	// growing from one voter to three spends only a moment with two
	// (which cannot lose either), not a catch-up time each.
	deficit := v.target - seated
	if len(staged) < deficit && len(cands) > 0 {
		best := cands[0]
		for _, m := range staged {
			zones[m.Zone]++
		}
		c := Change{Type: AddNonvoter, ID: best.ID, Addr: best.RaftAddr,
			Reason: fmt.Sprintf("stage %s as a non-voter: %d seated voters < target %d; %s", best.ID, seated, v.target, why(best))}
		return v.firstSafe([]Change{c})
	}
	if len(staged) == 0 {
		v.note(fmt.Sprintf(
			"%d seated voters < target %d, but no member can be staged (%d dead, %d ineligible, %d alive < stabilize %s, %d without a raft address)",
			seated, v.target, dead, ineligible, young, v.in.Stabilize, noAddr))
		return Change{}, false
	}
	var ready []Member
	for _, m := range staged {
		if v.byID[m.ID].Unhealthy == "" {
			ready = append(ready, m)
		}
	}
	// From an odd configuration with two seats or more to fill, promote
	// only when two are ready, one right after the other: an even
	// configuration tolerates no more failures than the odd one below
	// it, and a two-voter one loses its leader at the first slow
	// heartbeat. A staged server that never catches up holds the growth
	// (the reason says so) rather than leaving the cluster on two voters.
	need := 1
	if len(v.voters)%2 == 1 && deficit >= 2 && len(staged) >= 2 {
		need = 2
	}
	if len(ready) >= need {
		m := ready[0]
		c := Change{Type: AddVoter, ID: m.ID, Addr: m.RaftAddr,
			Reason: fmt.Sprintf("promote %s: its log has caught up; %d seated voters < target %d; %s", m.ID, seated, v.target, why(m))}
		// Adding a healthy voter never lowers the healthy count, but
		// it raises the quorum, so a cluster already short of healthy
		// voters gets nothing.
		return v.firstSafe([]Change{c})
	}
	for _, m := range staged {
		if u := v.byID[m.ID].Unhealthy; u != "" {
			v.note(fmt.Sprintf("staged non-voter %s is not ready to vote yet: %s", m.ID, u))
			break
		}
	}
	return Change{}, false
}

// removeGhost is step (d): a voter alive in gossip that runs no Raft past
// grace (a wiped disk, or a log wiped on a demotion that did not take it
// out of the configuration) while no other agent can take its seat. It
// counts toward the quorum without being able to vote; removed, it becomes
// a candidate again and is staged with a fresh log. With a successor at
// hand, removeSurplus takes it out after the successor votes instead.
func (v *view) removeGhost() (Change, bool) {
	if v.successor {
		return Change{}, false
	}
	var cs []Change
	for _, s := range v.servers {
		if !s.Voter || !s.NoReplica || s.ID == v.in.Leader {
			continue
		}
		d, past := v.unhealthyPastGrace(s.ID)
		if !past {
			continue
		}
		cs = append(cs, Change{Type: RemoveServer, ID: s.ID, Addr: s.Addr,
			Reason: fmt.Sprintf("remove voter %s: alive but it holds no raft replica for %s > grace %s (%s), and no other agent can take its seat; it will be staged again with a fresh log",
				s.ID, round(d), v.in.DeadGrace, s.Unhealthy)})
	}
	return v.firstSafe(cs)
}

// removeSurplus is step (c): when there are more voters than the target,
// remove one, never the leader. Preference: one gossip no longer knows, then
// a dead one (longest dead first), then one unhealthy in Raft (longest
// first), then an ineligible one, then one from the zone holding the most
// voters, alive the shortest, highest ID: the mirror of promote, so the two
// never undo each other. This is how a voter that lost its seat leaves:
// after its successor was promoted.
//
// A voter is surplus only above the configured target: when fewer agents
// are alive than the target (one of three restarting), the healthy voters
// keep their seats, even an even number of them, and so does the absent
// one, rather than leaving the whole store on fewer disks; the absent
// voter's successor is promoted when an agent is there to take it.
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
		case id == v.in.Leader:
			return 4
		case !ok:
			return 0
		case !m.Alive:
			return 1
		case v.byID[id].Unhealthy != "":
			return 2
		case !m.Eligible:
			return 3
		}
		return 4
	}
	since := func(id string) time.Time {
		if rank(id) == 2 {
			return v.byID[id].UnhealthySince
		}
		return v.members[id].Since
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
		if rank(a) == 4 {
			// Most voters in the zone first, then alive the shortest.
			r = cmp.Or(cmp.Compare(zones[mb.Zone], zones[ma.Zone]), mb.Since.Compare(ma.Since))
			return cmp.Or(r, strings.Compare(b, a))
		}
		// Dead, unhealthy or ineligible: in that state the longest first.
		return cmp.Or(since(a).Compare(since(b)), strings.Compare(a, b))
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
			why = fmt.Sprintf("it is unhealthy in raft for %s: %s", round(v.in.Now.Sub(v.byID[id].UnhealthySince)), v.byID[id].Unhealthy)
		case 3:
			why = "it is not eligible to vote"
		default:
			why = fmt.Sprintf("zone %s holds the most voters (%d)", zoneName(v.members[id].Zone), zones[v.members[id].Zone])
		}
		cs = append(cs, Change{Type: RemoveServer, ID: id, Addr: v.byID[id].Addr,
			Reason: fmt.Sprintf("remove surplus voter %s: %d voters > target %d; %s", id, len(v.voters), v.target, why)})
	}
	if len(cs) == 0 {
		v.note(fmt.Sprintf("%d voters > target %d, but the only one is the leader", len(v.voters), v.target))
	}
	return v.firstSafe(cs)
}

// removeUnneededNonvoter is step (e): with every seat taken, a non-voter
// left in the configuration (staged for a voter that came back) goes.
func (v *view) removeUnneededNonvoter() (Change, bool) {
	if seated, _ := v.seatedZones(); seated < v.target {
		return Change{}, false
	}
	var cs []Change
	for _, s := range v.servers {
		if s.Voter || s.ID == v.in.Leader || v.keep[s.ID] {
			continue
		}
		cs = append(cs, Change{Type: RemoveServer, ID: s.ID, Addr: s.Addr,
			Reason: fmt.Sprintf("remove non-voter %s: every seat is taken (target %d), it is not needed", s.ID, v.target)})
	}
	return v.firstSafe(cs)
}
