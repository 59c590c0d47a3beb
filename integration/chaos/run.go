package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// Fault is one kind of trouble a schedule injects.
type Fault string

const (
	LeaderKill      Fault = "leader-kill"      // SIGKILL the leader, restart it after the hold
	LeaderPause     Fault = "leader-pause"     // SIGSTOP the leader, SIGCONT after the hold
	LeaderPartition Fault = "leader-partition" // cut the leader off from every other agent
	Split           Fault = "split"            // a voter and a non-voter cut off from the other three
	NonVoterKill    Fault = "nonvoter-kill"    // SIGKILL a non-voter that clients use, restart it after the hold
	FullRestart     Fault = "full-restart"     // SIGKILL every agent, start them all again
)

// Faults lists every kind, in the order the bounded run uses them.
var Faults = []Fault{LeaderKill, LeaderPause, LeaderPartition, Split, NonVoterKill, FullRestart}

// Targets is the bound on the longest write unavailability per
// fault kind (for a killed non-voter: what the clients that used it saw).
var Targets = map[Fault]time.Duration{
	LeaderKill:      2 * time.Second,
	LeaderPause:     2 * time.Second,
	LeaderPartition: 5 * time.Second,
	NonVoterKill:    time.Second,
}

// Episode is one fault as it happened.
type Episode struct {
	Fault   Fault
	Target  string // agents the fault hit
	Inject  int64  // recorder times (ns)
	Heal    int64
	Healthy int64 // every agent answered a write again
	// Gap is the longest time without an acknowledged write in
	// [Inject, Healthy], over every client.
	Gap time.Duration
	// HomeGap, for NonVoterKill: the longest time without an acknowledged
	// write among the clients whose preferred agent was killed, while it
	// was down.
	HomeGap time.Duration
}

// Config shapes one run on one cluster.
type Config struct {
	Faults  []Fault // one episode each, in order
	Hold    func() time.Duration
	Keys    int           // keys the clients share
	Clients int           // clients per agent
	Pace    time.Duration // pause between one client's requests
	Timeout time.Duration // one request's client-side deadline
}

// Findings is what one run found.
type Findings struct {
	Episodes   []Episode
	Ops        int
	Unknown    int
	Violations int // keys whose history is not linearizable
	Undecided  int // keys the checker could not decide in time
	Lost       int
	Report     string // where the visualisation of a violation was written
}

// Run starts clients on every agent of c, injects cfg.Faults one after
// another, heals, reads every key back through every agent and checks the
// history.
func Run(t testing.TB, c *Cluster, cfg Config) Findings {
	t.Helper()
	rec := NewRecorder()
	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	addrs := make([]string, len(c.Agents))
	for i, a := range c.Agents {
		addrs[i] = c.URL(a)
	}
	// The keys exist before the clients start (their creation is the
	// history's first write of each), and so does the probe key.
	nClients := len(c.Agents) * cfg.Clients
	setup := NewClient(nClients, 0, addrs, c.HTTP, cfg.Timeout, rec, keys)
	for _, k := range append([]string{"probe"}, keys...) {
		testenv.WaitFor(t, 30*time.Second, "create key "+k, func() bool { return c.create(k) == nil })
	}
	for _, k := range keys {
		testenv.WaitFor(t, 30*time.Second, "first write of "+k, func() bool {
			_, ok := setup.Do(context.Background(), Input{Kind: Write, Key: k, Value: "init-" + k})
			return ok
		})
	}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var clients []*Client
	for i := range c.Agents {
		for j := range cfg.Clients {
			cl := NewClient(i*cfg.Clients+j, i, addrs, c.HTTP, cfg.Timeout, rec, keys)
			clients = append(clients, cl)
			wg.Add(1)
			go func() { defer wg.Done(); cl.Run(ctx, cfg.Pace) }()
		}
	}
	stopClients := func() { stop(); wg.Wait() }
	defer stopClients()

	var res Findings
	for _, f := range cfg.Faults {
		ep := c.inject(t, rec, f, cfg.Hold())
		for _, cl := range clients {
			cl.GoHome()
		}
		res.Episodes = append(res.Episodes, ep)
	}
	stopClients()

	// Final reads through every agent, recorded like any other read.
	final := map[string]string{}
	for i := range c.Agents {
		r := NewClient(nClients+1+i, i, addrs, c.HTTP, cfg.Timeout, rec, keys)
		for _, k := range keys {
			testenv.WaitFor(t, 30*time.Second, "final read of "+k+" via "+c.Agents[i].Name, func() bool {
				r.GoHome()
				out, ok := r.Do(context.Background(), Input{Kind: Read, Key: k})
				if ok && r.cur.Load() == 0 {
					final[k] = out.Value
					return true
				}
				return false
			})
		}
	}

	ops := rec.Ops()
	res.Ops = len(ops)
	for _, op := range ops {
		if op.Output.Result == Unknown {
			res.Unknown++
		}
	}
	for i := range res.Episodes {
		res.Episodes[i].measure(ops, c, nClients)
	}
	res.Lost = LostWrites(ops, final)
	res.Violations, res.Undecided, res.Report = check(t, ops)
	return res
}

// check runs porcupine per key and writes a visualisation of a violation.
func check(t testing.TB, ops []Op) (violations, undecided int, report string) {
	model := Model()
	hist := Operations(ops)
	for _, part := range model.Partition(hist) {
		r, info := porcupine.CheckOperationsVerbose(model, part, 2*time.Minute)
		switch r {
		case porcupine.Illegal:
			violations++
			f, err := os.CreateTemp("", "shoal-chaos-*.html")
			if err == nil {
				if porcupine.Visualize(model, info, f) == nil {
					report = f.Name()
				}
				f.Close()
			}
			t.Errorf("key %s: history not linearizable (%d operations); visualisation: %s", part[0].Input.(Input).Key, len(part), report)
		case porcupine.Unknown:
			undecided++
			t.Errorf("key %s: the checker could not decide in 2 minutes (%d operations)", part[0].Input.(Input).Key, len(part))
		}
	}
	return violations, undecided, report
}

// inject runs one episode: fault, hold, heal, wait for health.
func (c *Cluster) inject(t testing.TB, rec *Recorder, f Fault, hold time.Duration) Episode {
	t.Helper()
	var leader *Agent
	var voters []*Agent
	testenv.WaitFor(t, 60*time.Second, "a leader before "+string(f), func() bool {
		var err error
		leader, voters, err = c.Leader()
		return err == nil
	})
	var nonVoters []*Agent
	for _, a := range c.Agents {
		if !slices.Contains(voters, a) {
			nonVoters = append(nonVoters, a)
		}
	}
	ep := Episode{Fault: f}
	must := func(err error) {
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	var heal func()
	ep.Inject = rec.Now()
	switch f {
	case LeaderKill:
		ep.Target = leader.Name
		must(c.Kill(leader))
		heal = func() { must(c.Start(leader)) }
	case LeaderPause:
		ep.Target = leader.Name
		must(c.Pause(leader, true))
		heal = func() { must(c.Pause(leader, false)) }
	case LeaderPartition:
		ep.Target = leader.Name
		must(c.Cut(leader, others(c.Agents, leader)))
		heal = func() { must(c.Heal(leader)) }
	case Split:
		minority := []*Agent{voters[rand.IntN(len(voters))]}
		if len(nonVoters) > 0 {
			minority = append(minority, nonVoters[rand.IntN(len(nonVoters))])
		}
		var majority []*Agent
		for _, a := range c.Agents {
			if !slices.Contains(minority, a) {
				majority = append(majority, a)
			}
		}
		ep.Target = names(minority) + " | " + names(majority)
		for _, a := range minority {
			must(c.Cut(a, majority))
		}
		heal = func() {
			for _, a := range minority {
				must(c.Heal(a))
			}
		}
	case NonVoterKill:
		if len(nonVoters) == 0 {
			t.Fatalf("%s: no non-voter", f)
		}
		victim := nonVoters[rand.IntN(len(nonVoters))]
		ep.Target = victim.Name
		must(c.Kill(victim))
		heal = func() { must(c.Start(victim)) }
	case FullRestart:
		ep.Target = "all"
		for _, a := range c.Agents {
			must(c.Kill(a))
		}
		heal = func() {
			for _, a := range c.Agents {
				must(c.Start(a))
			}
		}
	default:
		t.Fatalf("unknown fault %q", f)
	}
	if f != FullRestart {
		time.Sleep(hold) // the fault's duration, not a synchronisation
	}
	ep.Heal = rec.Now()
	heal()
	testenv.WaitFor(t, 90*time.Second, "every agent takes writes again after "+string(f), func() bool {
		for _, a := range c.Agents {
			if c.probe(a) != nil {
				return false
			}
		}
		return true
	})
	ep.Healthy = rec.Now()
	c.WaitFormed(90 * time.Second)
	return ep
}

// measure fills the episode's gaps from the recorded operations.
func (ep *Episode) measure(ops []Op, c *Cluster, nClients int) {
	var all, home []int64
	victim := -1
	if ep.Fault == NonVoterKill {
		for i, a := range c.Agents {
			if a.Name == ep.Target {
				victim = i
			}
		}
	}
	for _, op := range ops {
		if op.Input.Kind == Read || op.Output.Result != OK {
			continue
		}
		all = append(all, op.Return)
		if op.Home == victim && op.Client < nClients {
			home = append(home, op.Return)
		}
	}
	ep.Gap = longestGap(all, ep.Inject, ep.Healthy)
	if victim >= 0 {
		ep.HomeGap = longestGap(home, ep.Inject, ep.Heal)
	}
}

// longestGap is the longest stretch of [from, to] holding none of times.
func longestGap(times []int64, from, to int64) time.Duration {
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	prev, gap := from, int64(0)
	for _, x := range times {
		if x < from {
			continue
		}
		if x > to {
			break
		}
		gap = max(gap, x-prev)
		prev = x
	}
	gap = max(gap, to-prev)
	return time.Duration(gap)
}

// create makes one key's ConfigMap if it does not exist yet.
func (c *Cluster) create(key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.HTTP.Do(keyRequest(ctx, http.MethodPost, c.URL(c.Agents[0]), key, "", 0))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusConflict {
		return nil
	}
	return fmt.Errorf("create %s: %s", key, resp.Status)
}

// probe writes the probe key through a (not part of the history).
func (c *Cluster) probe(a *Agent) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := c.HTTP.Do(keyRequest(ctx, http.MethodPut, c.URL(a), "probe", a.Name, 0))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe via %s: %s", a.Name, resp.Status)
	}
	return nil
}

func others(as []*Agent, a *Agent) []*Agent {
	var out []*Agent
	for _, x := range as {
		if x != a {
			out = append(out, x)
		}
	}
	return out
}

func names(as []*Agent) string {
	var s []string
	for _, a := range as {
		s = append(s, a.Name)
	}
	return strings.Join(s, ",")
}

// Table prints the summary of several runs: one row per fault kind with
// the episodes and the longest unavailability, then the totals.
func Table(results []Findings) string {
	var b strings.Builder
	type row struct {
		n            int
		gap, homeGap time.Duration
	}
	rows := map[Fault]*row{}
	var ops, unknown, violations, undecided, lost, episodes int
	for _, r := range results {
		ops += r.Ops
		unknown += r.Unknown
		violations += r.Violations
		undecided += r.Undecided
		lost += r.Lost
		for _, ep := range r.Episodes {
			episodes++
			rw := rows[ep.Fault]
			if rw == nil {
				rw = &row{}
				rows[ep.Fault] = rw
			}
			rw.n++
			rw.gap = max(rw.gap, ep.Gap)
			rw.homeGap = max(rw.homeGap, ep.HomeGap)
		}
	}
	fmt.Fprintf(&b, "%-18s %9s %18s %8s\n", "fault", "schedules", "longest write gap", "target")
	for _, f := range Faults {
		rw := rows[f]
		if rw == nil {
			continue
		}
		gap := rw.gap
		if f == NonVoterKill {
			gap = rw.homeGap // what its own clients saw; the others never stop
		}
		target, verdict := "-", ""
		if d, ok := Targets[f]; ok {
			target, verdict = d.String(), "met"
			if gap > d {
				verdict = "NOT MET"
			}
		}
		fmt.Fprintf(&b, "%-18s %9d %18v %8s %s\n", f, rw.n, gap.Round(time.Millisecond), target, verdict)
	}
	fmt.Fprintf(&b, "schedules %d, operations %d (outcome unknown %d), violations %d, undecided %d, acknowledged writes lost %d\n",
		episodes, ops, unknown, violations, undecided, lost)
	return b.String()
}
