package consensus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// waitFor polls cond until it holds or timeout passes, then fails the test
// with what.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// testLogger is silent unless SHOAL_RAFT_LOG names a level (e.g. debug).
func testLogger(name string) hclog.Logger {
	lvl := os.Getenv("SHOAL_RAFT_LOG")
	if lvl == "" {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.LevelFromString(lvl), Output: os.Stderr})
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newStore() *store.Store { return store.New(store.DefaultConfig()) }

func configMap(ns, name string, size int) *api.ConfigMap {
	cm := &api.ConfigMap{
		ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "bench"}},
		Data:       map[string]string{"payload": strings.Repeat("x", size)},
	}
	api.SetTypeMeta(cm)
	return cm
}

func createOp(obj api.Object) store.Op { return store.Op{Type: store.OpCreate, Object: obj} }

// dump renders every object of every kind, sorted, with the revision: two
// stores with equal dumps hold the same state.
func dump(t testing.TB, st *store.Store) string {
	t.Helper()
	var lines []string
	for _, k := range api.Kinds() {
		objs, _, err := st.List(k.Kind, "", store.Selector{})
		if err != nil {
			t.Fatalf("list %s: %v", k.Kind, err)
		}
		for _, o := range objs {
			b, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, k.Kind+" "+string(b))
		}
	}
	sort.Strings(lines)
	return fmt.Sprintf("revision %d\n%s", st.Revision(), strings.Join(lines, "\n"))
}

func snapshotBytes(t testing.TB, st *store.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := st.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// cluster is several nodes of one Raft cluster in this process.
type cluster struct {
	t     testing.TB
	nodes []*Node
	trans []*raft.InmemTransport // nil for TCP clusters
}

// newInmemCluster starts n voters over raft's in-memory transport, all
// connected: the first bootstraps and adds the others.
func newInmemCluster(t testing.TB, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	for i := 0; i < n; i++ {
		_, tr := raft.NewInmemTransport(raft.NewInmemAddr())
		c.trans = append(c.trans, tr)
	}
	for i, a := range c.trans {
		for j, b := range c.trans {
			if i != j {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
	for i := 0; i < n; i++ {
		cfg := TestConfig()
		cfg.ID = fmt.Sprintf("node%d", i)
		cfg.InMemory = true
		cfg.Transport = c.trans[i]
		cfg.Bootstrap = i == 0
		cfg.Logger = testLogger(cfg.ID)
		c.start(cfg)
	}
	c.join()
	return c
}

func (c *cluster) start(cfg Config) {
	c.t.Helper()
	nd, err := NewNode(cfg, newStore())
	if err != nil {
		c.t.Fatalf("start %s: %v", cfg.ID, err)
	}
	c.nodes = append(c.nodes, nd)
	c.t.Cleanup(func() { _ = nd.Shutdown() })
}

// join waits for node 0 to lead, adds the others as voters and waits until
// every node knows the same leader.
func (c *cluster) join() {
	c.t.Helper()
	waitFor(c.t, 10*time.Second, "node0 to lead", c.nodes[0].IsLeader)
	for _, nd := range c.nodes[1:] {
		// AddVoter is idempotent: retry on whoever leads if leadership moves.
		var err error
		waitFor(c.t, 20*time.Second, "add voter "+nd.cfg.ID, func() bool {
			err = c.anyLeader().AddVoter(ctxTimeout(c.t, 10*time.Second), nd.cfg.ID, string(nd.localAddr()))
			if err != nil && !retryable(err) {
				c.t.Fatalf("add voter %s: %v", nd.cfg.ID, err)
			}
			return err == nil
		})
	}
	// Every node must know the whole configuration before a test kills the
	// leader: a node that missed the last AddVoter refuses votes from the
	// server it does not know, and the survivors could not elect anyone.
	waitFor(c.t, 10*time.Second, "every node to know every voter", func() bool {
		for _, nd := range c.nodes {
			if len(nd.Status().Voters) != len(c.nodes) {
				return false
			}
		}
		return true
	})
	c.leader()
}

// leader waits until exactly one live node leads and every live node
// agrees on it, and returns it.
func (c *cluster) leader() *Node {
	c.t.Helper()
	var lead *Node
	waitFor(c.t, 10*time.Second, "one leader known to all", func() bool {
		lead = nil
		for _, nd := range c.live() {
			if nd.IsLeader() {
				if lead != nil {
					return false
				}
				lead = nd
			}
		}
		if lead == nil {
			return false
		}
		for _, nd := range c.live() {
			if id, _ := nd.Leader(); id != lead.cfg.ID {
				return false
			}
		}
		return true
	})
	return lead
}

// anyLeader waits until some live node believes it leads (nodes not yet
// added to the configuration do not know the leader).
func (c *cluster) anyLeader() *Node {
	c.t.Helper()
	var lead *Node
	waitFor(c.t, 10*time.Second, "a leader", func() bool {
		for _, nd := range c.live() {
			if nd.IsLeader() {
				lead = nd
				return true
			}
		}
		return false
	})
	return lead
}

func (c *cluster) live() []*Node {
	var out []*Node
	for _, nd := range c.nodes {
		if !nd.closed() {
			out = append(out, nd)
		}
	}
	return out
}

func (c *cluster) followers() []*Node {
	var out []*Node
	for _, nd := range c.live() {
		if !nd.IsLeader() {
			out = append(out, nd)
		}
	}
	return out
}

// kill shuts a node down and cuts it off the in-memory network.
func (c *cluster) kill(nd *Node) {
	c.t.Helper()
	if err := nd.Shutdown(); err != nil {
		c.t.Fatalf("shutdown %s: %v", nd.cfg.ID, err)
	}
	for i, x := range c.nodes {
		if x == nd && c.trans != nil {
			for j, tr := range c.trans {
				if j != i {
					tr.Disconnect(c.trans[i].LocalAddr())
				}
			}
		}
	}
}

// converged waits until every live node's store has the same content as
// the leader's and the leader's revision is at least rev.
func (c *cluster) converged(rev int64) {
	c.t.Helper()
	lead := c.leader()
	waitFor(c.t, 10*time.Second, "stores to converge", func() bool {
		if lead.Store().Revision() < rev {
			return false
		}
		want := dump(c.t, lead.Store())
		for _, nd := range c.live() {
			if dump(c.t, nd.Store()) != want {
				return false
			}
		}
		return true
	})
}

// retryable reports whether a proposal failed only because leadership moved.
func retryable(err error) bool {
	return errors.Is(err, ErrOutcomeUnknown) || errors.As(err, new(*ErrNotLeader))
}

// propose writes ops through whichever node leads, retrying while
// leadership moves (tests share two cores with other work, and elections
// happen). After an attempt with an unknown outcome, ErrAlreadyExists from
// a create counts as success: the earlier attempt committed.
func (c *cluster) propose(ops ...store.Op) []store.Result {
	c.t.Helper()
	unknown := false
	var res []store.Result
	waitFor(c.t, 20*time.Second, "a proposal to commit", func() bool {
		var err error
		res, err = c.leader().Propose(ctxTimeout(c.t, 10*time.Second), ops)
		if err != nil {
			if !retryable(err) {
				c.t.Fatalf("propose: %v", err)
			}
			unknown = unknown || errors.Is(err, ErrOutcomeUnknown)
			return false
		}
		return true
	})
	for i, r := range res {
		if r.Err != nil && !(unknown && ops[i].Type == store.OpCreate && errors.Is(r.Err, store.ErrAlreadyExists)) {
			c.t.Fatalf("propose: op %d: %v", i, r.Err)
		}
	}
	return res
}
