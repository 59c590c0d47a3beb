package agent

// Cluster identity. An agent records the id of its cluster in its data dir
// (DATA_DIR/cluster-id) when it bootstraps or first joins, and gossips it in
// its metadata. The id is "LINEAGE" for a cluster as bootstrapped and
// "LINEAGE.EPOCH" (EPOCH 2, 3, ...) after each `shoal recover`: the lineage
// says which cluster it is, the epoch which Raft configuration is the
// current one. Gossip refuses to merge with members of another lineage, so
// two clusters never mix; an agent whose Raft data predates a recovery
// (a lower epoch than a member it meets) stops instead of running Raft of
// the old configuration, and a member that does so is refused.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/consensus/gossip"
)

// clusterIDFile holds the cluster id in the data dir.
const clusterIDFile = "cluster-id"

// Reasons CheckCluster refuses a member; errors.Is tells this agent's
// fault (it must stop) from the other's.
var (
	// errForeignCluster: the member belongs to another cluster.
	errForeignCluster = errors.New("another cluster")
	// errStaleEpoch: this agent's Raft data is from before a `shoal
	// recover` of its cluster; it must not run Raft with it.
	errStaleEpoch = errors.New("this agent's raft data predates a recovery of its cluster")
	// errMemberStale: the member runs Raft from before a recovery.
	errMemberStale = errors.New("the member's raft data predates a recovery of this cluster")
)

func readClusterID(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, clusterIDFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("data-dir: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// writeClusterID records id in dir, atomically.
func writeClusterID(dir, id string) error {
	tmp := filepath.Join(dir, clusterIDFile+".tmp")
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return fmt.Errorf("data-dir: writing the cluster id: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, clusterIDFile))
}

// setClusterID records id in memory and in the data dir.
func (a *Agent) setClusterID(id string) error {
	a.mu.Lock()
	a.clusterID = id
	a.mu.Unlock()
	return writeClusterID(a.cfg.DataDir, id)
}

func newClusterID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// parseClusterID splits "LINEAGE.EPOCH" (EPOCH 1 when absent).
func parseClusterID(id string) (lineage string, epoch int) {
	lineage, e, ok := strings.Cut(id, ".")
	if !ok {
		return id, 1
	}
	n, err := strconv.Atoi(e)
	if err != nil || n < 1 {
		return id, 1 // not ours: a lineage of its own
	}
	return lineage, n
}

// nextEpoch is the id of the same cluster after one more recovery; an
// empty id (a data dir from before cluster ids) starts a new lineage.
func nextEpoch(id string) string {
	if id == "" {
		return newClusterID() + ".2"
	}
	lineage, epoch := parseClusterID(id)
	return lineage + "." + strconv.Itoa(epoch+1)
}

// checkCluster is gossip's CheckCluster: whether this agent may share a
// membership with member, which advertises m. It runs on memberlist's
// goroutines: it only reads and records, and kicks roleLoop, which stops
// the agent when its own data is stale.
func (a *Agent) checkCluster(member string, m gossip.Meta) error {
	own := a.ClusterID()
	if own == "" || m.ClusterID == own {
		return nil // a new agent decides in roleLoop what to join
	}
	ol, oe := parseClusterID(own)
	rl, re := parseClusterID(m.ClusterID)
	switch {
	case ol != rl:
		return fmt.Errorf("%w: this agent belongs to cluster %s (DATA_DIR/%s) and never joins another; to move this host to the other cluster, run it with an empty --data-dir",
			errForeignCluster, own, clusterIDFile)
	case re > oe && a.Node() != nil:
		err := fmt.Errorf("%w: it holds epoch %d of cluster %s, and %s advertises epoch %d (%s), made by `shoal recover`: this agent refuses to run Raft of the old configuration; wipe DATA_DIR/raft and DATA_DIR/%s to join the cluster as a new agent",
			errStaleEpoch, oe, ol, member, re, m.ClusterID, clusterIDFile)
		a.mu.Lock()
		if a.stale == nil {
			a.stale = err
		}
		a.mu.Unlock()
		a.kicks.kick(kickBootstrap)
		return err
	case re > oe:
		return nil // no Raft here: roleLoop adopts the new epoch
	case m.Role == gossip.RoleVoter:
		return fmt.Errorf("%w: %s runs Raft from epoch %d of this cluster, which `shoal recover` moved to epoch %d",
			errMemberStale, member, re, oe)
	}
	return nil // an old epoch's non-voter: it adopts ours
}

// staleError is set once gossip showed that this voter's data predates a
// recovery.
func (a *Agent) staleError() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stale
}

// stopFatal stops the agent without handing anything over; Run returns err.
func (a *Agent) stopFatal(err error) {
	a.mu.Lock()
	if a.fatal == nil {
		a.fatal = err
	}
	a.mu.Unlock()
	a.log.Error("stopping", "err", err)
	a.runCancel()
}

// adoptEpoch moves an agent that runs no Raft to the newest epoch of its
// cluster that an alive member advertises (the cluster was recovered while
// it was away; it held no vote, so nothing of it is stale).
func (a *Agent) adoptEpoch() {
	own := a.ClusterID()
	if own == "" || a.Node() != nil || a.gossip == nil {
		return
	}
	// The cluster ids alive members advertise are indexed: one, or a few
	// while an epoch spreads (a scan of every member on every change of
	// the table was 6% of the CPU of a thousand agents converging).
	v := a.gossip.Version()
	if v == a.epochScanned.version && own == a.epochScanned.own {
		return
	}
	a.epochScanned.version, a.epochScanned.own = v, own
	ol, oe := parseClusterID(own)
	best, bestEpoch := "", oe
	a.gossip.EachClusterID(func(id string, _ int) bool {
		if id == own {
			return true
		}
		if l, e := parseClusterID(id); l == ol && e > bestEpoch {
			best, bestEpoch = id, e
		}
		return true
	})
	if best == "" {
		return
	}
	a.log.Info("adopting the cluster's new epoch (it was recovered while this agent was away)", "from", own, "to", best)
	if err := a.setClusterID(best); err != nil {
		a.log.Error("recording the cluster id", "err", err)
		a.epochScanned.version = 0 // scan again on the next tick
		return
	}
	a.publishMeta()
}

// unreachedJoin lists the --join addresses at which no alive agent (this
// one included) has answered in gossip yet.
func (a *Agent) unreachedJoin(ctx context.Context) []string {
	return a.unreachedJoinOf(ctx, a.gossip)
}

// unreachedJoinOf is unreachedJoin on gossip g (the first gossip of an
// agent started with a bootstrap token, or the agent's own).
func (a *Agent) unreachedJoinOf(ctx context.Context, g *gossip.Gossip) []string {
	if len(a.cfg.Join) == 0 || g == nil {
		return nil
	}
	answered := map[string]bool{}
	for _, m := range g.Members() {
		if m.State == gossip.Alive {
			answered[m.Address()] = true
		}
	}
	answered[g.Local().Address()] = true
	_, defPort, _ := net.SplitHostPort(a.cfg.GossipAddr)
	var out []string
	for _, j := range a.cfg.Join {
		host, port, err := net.SplitHostPort(j)
		if err != nil {
			host, port = j, defPort
		}
		ips := []string{host}
		if net.ParseIP(host) == nil {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			ips, err = net.DefaultResolver.LookupHost(rctx, host)
			cancel()
			if err != nil {
				out = append(out, j)
				continue
			}
		}
		reached := false
		for _, ip := range ips {
			reached = reached || answered[net.JoinHostPort(ip, port)]
		}
		if !reached {
			out = append(out, j)
		}
	}
	return out
}
