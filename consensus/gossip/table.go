package gossip

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// State is a member's state in this agent's member table.
type State int

const (
	// Alive: the member answers probes (or has not yet been found
	// unresponsive).
	Alive State = iota + 1
	// Dead: memberlist declared the member failed.
	Dead
	// Left: the member announced its departure (Gossip.Leave) before it
	// went. If the announcement did not reach this agent first, the
	// member shows as Dead instead.
	Left
)

func (s State) String() string {
	switch s {
	case Alive:
		return "alive"
	case Dead:
		return "dead"
	case Left:
		return "left"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Member is one entry of the member table.
type Member struct {
	Name string
	Addr string // IP address gossip reaches it at
	Port uint16 // gossip port
	Meta Meta
	// MetaErr is set when the member's metadata could not be decoded
	// (not a Shoal agent, or corrupt); Meta is then the zero value.
	MetaErr string
	State   State
	// Since is when this agent saw the member enter State.
	Since time.Time
}

// Address is host:port of the member's gossip endpoint.
func (m Member) Address() string {
	return net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port)))
}

func (m Member) String() string {
	return fmt.Sprintf("%s@%s(%s)", m.Name, m.Address(), m.State)
}

// EventType says what happened to a member.
type EventType int

const (
	// EventJoin: a member became alive (new, or back after dead/left).
	EventJoin EventType = iota + 1
	// EventUpdate: an alive member changed its metadata (or address).
	EventUpdate
	// EventLeave: a member became dead or left; Member.State says which.
	EventLeave
)

func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventLeave:
		return "leave"
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// Event is a change to the member table; Member is the entry after it.
type Event struct {
	Type   EventType
	Member Member
}

// table is the member table. It is not safe for concurrent use; Gossip
// guards it. Time is an input: every change carries now.
//
// Lookups run per request in a large cluster, so nothing here is O(members)
// per event: pruning runs only once the earliest departed member's
// retention has passed, and the voters and the cluster ids are indexed.
type table struct {
	members   map[string]Member
	retention time.Duration
	// pruneAt is when the earliest non-alive member's retention ends;
	// zero when every member is alive.
	pruneAt time.Time
	// voters holds the names of the members whose latest metadata says
	// RoleVoter, whatever their state.
	voters map[string]struct{}
	// clusters counts the alive members with readable metadata by the
	// cluster id they advertise (none for an empty one).
	clusters map[string]int
	// departed holds the names of the members not alive (dead or left),
	// and addrs counts the members at each gossip address (Address),
	// whatever their state: what Reconnect asks every round.
	departed map[string]struct{}
	addrs    map[string]int
	// version counts the changes to the table.
	version uint64
}

func newTable(retention time.Duration) *table {
	return &table{members: map[string]Member{}, voters: map[string]struct{}{}, clusters: map[string]int{},
		departed: map[string]struct{}{}, addrs: map[string]int{}, retention: retention}
}

// clusterOf is the cluster id m counts under in table.clusters, if any.
func clusterOf(m Member) (string, bool) {
	if m.State != Alive || m.MetaErr != "" || m.Meta.ClusterID == "" {
		return "", false
	}
	return m.Meta.ClusterID, true
}

// put stores m and keeps the indexes.
func (t *table) put(m Member) {
	old, known := t.members[m.Name]
	if known {
		if id, ok := clusterOf(old); ok {
			if t.clusters[id]--; t.clusters[id] == 0 {
				delete(t.clusters, id)
			}
		}
	}
	if !known || old.Addr != m.Addr || old.Port != m.Port {
		if known {
			t.unaddr(old)
		}
		t.addrs[m.Address()]++
	}
	if id, ok := clusterOf(m); ok {
		t.clusters[id]++
	}
	t.members[m.Name] = m
	if m.Meta.Role == RoleVoter {
		t.voters[m.Name] = struct{}{}
	} else {
		delete(t.voters, m.Name)
	}
	if m.State != Alive {
		t.departed[m.Name] = struct{}{}
		t.prunable(m)
	} else {
		delete(t.departed, m.Name)
	}
	t.version++
}

// unaddr takes m out of the address counts.
func (t *table) unaddr(m Member) {
	a := m.Address()
	if t.addrs[a]--; t.addrs[a] <= 0 {
		delete(t.addrs, a)
	}
}

// prunable moves pruneAt to when non-alive m's retention ends, if that is
// earlier.
func (t *table) prunable(m Member) {
	if end := m.Since.Add(t.retention); t.pruneAt.IsZero() || end.Before(t.pruneAt) {
		t.pruneAt = end
	}
}

// alive records that m is alive: a new member, one that came back, or an
// update of an alive one. It returns the event to report.
func (t *table) alive(m Member, now time.Time) Event {
	old, known := t.members[m.Name]
	m.State = Alive
	m.Since = now
	ev := EventJoin
	if known && old.State == Alive {
		m.Since = old.Since
		ev = EventUpdate
	}
	t.put(m)
	t.prune(now)
	return Event{Type: ev, Member: m}
}

// gone records that m is dead, or left if its last metadata said it was
// leaving.
func (t *table) gone(m Member, now time.Time) Event {
	m.State = Dead
	if m.Meta.Leaving {
		m.State = Left
	}
	m.Since = now
	t.put(m)
	t.prune(now)
	return Event{Type: EventLeave, Member: m}
}

// expired says whether m, dead or departed, is past the retention.
func (t *table) expired(m Member, now time.Time) bool {
	return m.State != Alive && now.Sub(m.Since) > t.retention
}

// prune forgets members dead or departed for longer than the retention.
// It scans the table only once the earliest of them has expired.
func (t *table) prune(now time.Time) {
	if t.pruneAt.IsZero() || !now.After(t.pruneAt) {
		return
	}
	t.pruneAt = time.Time{}
	for name, m := range t.members {
		switch {
		case m.State == Alive:
		case t.expired(m, now):
			delete(t.members, name)
			delete(t.voters, name)
			delete(t.departed, name)
			t.unaddr(m)
			t.version++
		default:
			t.prunable(m)
		}
	}
}

func (t *table) get(name string) (Member, bool) {
	m, ok := t.members[name]
	return m, ok
}

// list returns a copy sorted by name.
func (t *table) list(now time.Time) []Member {
	t.prune(now)
	out := make([]Member, 0, len(t.members))
	for _, m := range t.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}
