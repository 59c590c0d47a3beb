package gossip

import (
	"fmt"
	"net"
	"strconv"

	"github.com/hashicorp/memberlist"
)

// hooks receives memberlist's callbacks. Every method returns quickly: it
// copies what it needs, updates the table under g.mu, offers an event to the
// buffered channel without waiting, and returns.
type hooks struct {
	g *Gossip
}

var (
	_ memberlist.Delegate         = (*hooks)(nil)
	_ memberlist.EventDelegate    = (*hooks)(nil)
	_ memberlist.ConflictDelegate = (*hooks)(nil)
	_ memberlist.MergeDelegate    = (*hooks)(nil)
)

// NodeMeta returns the encoded local metadata, validated to fit the limit.
func (h *hooks) NodeMeta(limit int) []byte {
	g := h.g
	g.metaMu.Lock()
	defer g.metaMu.Unlock()
	if len(g.metaBuf) > limit {
		// encodeMeta keeps it under memberlist.MetaMaxSize, which is
		// what memberlist passes; never send a truncated encoding.
		g.log.Error("gossip: metadata larger than memberlist's limit; sending none", "size", len(g.metaBuf), "limit", limit)
		return nil
	}
	return append([]byte(nil), g.metaBuf...)
}

// We send no user messages and no user state.
func (h *hooks) NotifyMsg([]byte)                           {}
func (h *hooks) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (h *hooks) LocalState(join bool) []byte                { return nil }
func (h *hooks) MergeRemoteState(buf []byte, join bool)     {}

func (h *hooks) NotifyJoin(n *memberlist.Node) {
	m := h.member(n)
	h.apply(func(t *table) Event { return t.alive(m, h.g.now()) })
}

func (h *hooks) NotifyUpdate(n *memberlist.Node) {
	m := h.member(n)
	h.apply(func(t *table) Event { return t.alive(m, h.g.now()) })
}

func (h *hooks) NotifyLeave(n *memberlist.Node) {
	m := h.member(n)
	h.apply(func(t *table) Event { return t.gone(m, h.g.now()) })
}

// apply changes the table and offers the event, never waiting.
func (h *hooks) apply(change func(*table) Event) {
	g := h.g
	g.mu.Lock()
	defer g.mu.Unlock()
	ev := change(g.table)
	if g.closed {
		return
	}
	select {
	case g.events <- ev:
	default:
		g.dropped.Add(1)
	}
}

// member copies what we keep of a memberlist node; memberlist owns n.
func (h *hooks) member(n *memberlist.Node) Member {
	m := Member{Name: n.Name, Addr: n.Addr.String(), Port: n.Port}
	meta, err := metas.decode(n.Meta)
	if err != nil {
		m.MetaErr = err.Error()
		h.g.log.Warn("gossip: member has unreadable metadata", "member", n.Name, "addr", n.Address(), "err", err)
	} else {
		m.Meta = meta
	}
	return m
}

// NotifyMerge is called on both sides of a join's state exchange, with the
// other side's members. It refuses the merge when the other side has an
// alive member under a name that an alive member of ours holds at another
// address: merging would make the two fight over the name. memberlist's own
// check would only ignore the newcomer, leaving it to believe it joined.
func (h *hooks) NotifyMerge(peers []*memberlist.Node) error {
	g := h.g
	if err := h.checkClusters(peers); err != nil {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.joining.Load() > 0 {
			g.mergeRefused = err
		} else {
			g.log.Warn("gossip: refused a merge: " + err.Error())
		}
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range peers {
		if p.State != memberlist.StateAlive && p.State != memberlist.StateSuspect {
			continue
		}
		mine, ok := g.table.get(p.Name)
		if !ok || mine.State != Alive {
			continue
		}
		theirs := net.JoinHostPort(p.Addr.String(), strconv.Itoa(int(p.Port)))
		if theirs == mine.Address() {
			continue
		}
		clash := &NameClashError{Name: p.Name, Existing: mine.Address(), Claimant: theirs}
		if g.joining.Load() > 0 {
			// We are the newcomer: the cluster's member is the
			// existing one. Join reports it.
			clash = &NameClashError{Name: p.Name, Existing: theirs, Claimant: mine.Address()}
			g.mergeClash = clash
		} else {
			g.log.Warn("gossip: refused a join: " + clash.Error())
		}
		return clash
	}
	return nil
}

// NotifyConflict is memberlist telling us that an alive message claims a
// known member's name from another address; memberlist ignores the message.
// Logged, at most once a minute per name and address.
func (h *hooks) NotifyConflict(existing, other *memberlist.Node) {
	g := h.g
	key := existing.Name + " " + other.Address()
	now := g.now()
	g.mu.Lock()
	last, seen := g.conflictLogged[key]
	if seen && now.Sub(last) < conflictLogEvery {
		g.mu.Unlock()
		return
	}
	if len(g.conflictLogged) >= 1024 { // bound the memory of a long-running clash storm
		clear(g.conflictLogged)
	}
	g.conflictLogged[key] = now
	g.mu.Unlock()
	msg := fmt.Sprintf("gossip: node name %q is claimed by %s but held by %s; ignoring the claimant",
		existing.Name, other.Address(), existing.Address())
	if existing.Name == g.cfg.NodeName {
		g.log.Error(msg + " (that is this node's name: another agent is configured with it)")
		return
	}
	g.log.Warn(msg)
}

// checkClusters asks Config.CheckCluster about the cluster id of every
// alive member in peers.
func (h *hooks) checkClusters(peers []*memberlist.Node) *ClusterRefusedError {
	check := h.g.cfg.CheckCluster
	if check == nil {
		return nil
	}
	for _, p := range peers {
		if p.Name == h.g.cfg.NodeName || (p.State != memberlist.StateAlive && p.State != memberlist.StateSuspect) {
			continue
		}
		meta, err := metas.decode(p.Meta)
		if err != nil || meta.ClusterID == "" {
			continue
		}
		if err := check(p.Name, meta); err != nil {
			return &ClusterRefusedError{Member: p.Name, Addr: net.JoinHostPort(p.Addr.String(), strconv.Itoa(int(p.Port))), ClusterID: meta.ClusterID, Err: err}
		}
	}
	return nil
}
