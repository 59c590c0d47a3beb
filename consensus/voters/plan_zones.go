package voters

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// spreadZones is the zone step of Plan: with every seat taken, it moves a
// vote from a zone that holds two voters or more to a zone that holds none,
// when an agent able to vote lives there. It never removes anything itself:
// it stages that agent as a non-voter, promotes it once its log has caught
// up (the configuration then holds one voter more than the target), and
// removeSurplus, which takes the surplus voter from the zone holding the
// most voters and never the leader while another choice exists, completes
// the move on the next plan. So the voters never drop below the target,
// and each change is a single one that passes safe.
//
// It only acts on a cluster at rest: exactly Target voters, all seated and
// healthy, the effective target equal to the configured one (otherwise the
// surplus voter could not leave). Only named zones count: a member without
// --zone is neither crowded nor a destination, so a cluster without zones is
// never touched. Each move adds one zone to the voters' zones and removes
// none, so two layouts can never alternate.
func (v *view) spreadZones() (Change, bool) {
	if v.target != v.in.Target || len(v.voters) != v.target {
		return Change{}, false
	}
	perZone := map[string]int{}
	for id := range v.voters {
		if !v.seated(id) || !v.up(id) {
			return Change{}, false // not at rest: the other steps come first
		}
		if z := v.members[id].Zone; z != "" {
			perZone[z]++
		}
	}
	crowded := ""
	for z, n := range perZone {
		if n >= 2 && (crowded == "" || n > perZone[crowded] || n == perZone[crowded] && z < crowded) {
			crowded = z
		}
	}
	if crowded == "" {
		return Change{}, false
	}
	// A destination is a named zone without a voter; an agent there may
	// vote (alive, eligible, with a raft address) and has been alive for
	// Stabilize, the same wait as any promotion.
	able := func(m Member) bool {
		return m.Zone != "" && perZone[m.Zone] == 0 && m.Alive && m.Eligible && m.RaftAddr != ""
	}
	stable := func(m Member) bool { return v.in.Now.Sub(m.Since) >= v.in.Stabilize }
	older := func(a, b Member) int { return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.ID, b.ID)) }
	move := fmt.Sprintf("zone %s holds %d voters", crowded, perZone[crowded])

	var staged []Member
	for _, s := range v.servers {
		if m, ok := v.members[s.ID]; ok && !s.Voter && !s.NoReplica && able(m) {
			staged = append(staged, m)
		}
	}
	slices.SortFunc(staged, older)
	for _, m := range staged {
		v.keep[m.ID] = true // removeUnneededNonvoter must leave it staged
	}
	for _, m := range staged {
		if v.byID[m.ID].Unhealthy != "" || !stable(m) {
			continue
		}
		c := Change{Type: AddVoter, ID: m.ID, Addr: m.RaftAddr,
			Reason: fmt.Sprintf("promote %s to spread the voters: zone %s has no voter, %s; its log has caught up, and a voter of zone %s leaves once it votes",
				m.ID, m.Zone, move, crowded)}
		return v.firstSafe([]Change{c})
	}
	if len(staged) > 0 {
		m := staged[0]
		why := v.byID[m.ID].Unhealthy
		if why == "" {
			why = fmt.Sprintf("alive for %s < stabilize %s", round(v.in.Now.Sub(m.Since)), v.in.Stabilize)
		}
		v.note(fmt.Sprintf("staged non-voter %s (zone %s, which has no voter) is not ready to vote yet: %s", m.ID, m.Zone, why))
		return Change{}, false
	}

	var cands []Member
	young := 0
	for _, m := range v.members {
		if _, inConfig := v.byID[m.ID]; inConfig || !able(m) {
			continue
		}
		if !stable(m) {
			young++
			continue
		}
		cands = append(cands, m)
	}
	if len(cands) == 0 {
		if young > 0 {
			v.note(fmt.Sprintf("%s while %d agents in zones without a voter are alive < stabilize %s", move, young, v.in.Stabilize))
		}
		return Change{}, false
	}
	slices.SortFunc(cands, older)
	m := cands[0]
	c := Change{Type: AddNonvoter, ID: m.ID, Addr: m.RaftAddr,
		Reason: fmt.Sprintf("stage %s as a non-voter to spread the voters: zone %s has no voter, %s", m.ID, m.Zone, move)}
	return v.firstSafe([]Change{c})
}
