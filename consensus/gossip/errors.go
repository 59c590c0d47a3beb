package gossip

import (
	"errors"
	"fmt"
)

// Errors returned by this package. Test them with errors.Is, and
// NameClashError with errors.As.
var (
	// ErrShutdown: Shutdown was called; nothing more can be done with this
	// Gossip.
	ErrShutdown = errors.New("gossip: shut down")

	// ErrGossipKey: a member answered the join but the exchange failed in a
	// way that points at gossip encryption: the keys differ, or one side
	// encrypts and the other does not. Join fails at once with it instead
	// of retrying, because retrying cannot help.
	ErrGossipKey = errors.New("gossip: encryption key mismatch (check --gossip-key on both sides)")

	// ErrLeft: Leave was called; the metadata can no longer change.
	ErrLeft = errors.New("gossip: this node has left the cluster")

	// ErrBroadcastTimeout: UpdateMeta changed the local metadata but
	// memberlist did not confirm the broadcast in time. The change is not
	// lost: it keeps spreading through gossip and push/pull.
	ErrBroadcastTimeout = errors.New("gossip: metadata broadcast not confirmed in time")
)

// NameClashError is returned by Join when the cluster already has an alive
// member with this node's name at another address. Nothing was merged: the
// existing member keeps its name, and this node knows no one.
type NameClashError struct {
	Name     string // the contested node name
	Existing string // host:port of the member that holds it
	Claimant string // host:port of the node that tried to take it
}

func (e *NameClashError) Error() string {
	return fmt.Sprintf("join: node name %q is already used by %s, so the node at %s cannot join with it; give each agent a unique name",
		e.Name, e.Existing, e.Claimant)
}

// ClusterRefusedError is returned by Join (and logged on the side that
// refuses a push/pull) when Config.CheckCluster refuses the cluster id an
// alive member advertises. Nothing was merged.
type ClusterRefusedError struct {
	Member    string // the member advertising ClusterID
	Addr      string // its host:port
	ClusterID string
	Err       error // CheckCluster's reason
}

func (e *ClusterRefusedError) Error() string {
	return fmt.Sprintf("gossip: member %s at %s is in cluster %s: %v", e.Member, e.Addr, e.ClusterID, e.Err)
}

func (e *ClusterRefusedError) Unwrap() error { return e.Err }
