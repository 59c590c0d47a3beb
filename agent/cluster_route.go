package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/agent/apiserver"
	"github.com/shoal-dev/shoal/agent/identity"
	"github.com/shoal-dev/shoal/agent/internal/metrics"
	"github.com/shoal-dev/shoal/consensus"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/gossip"
)

// forwardBatchAlways (tests) makes agents put every forwarded write in a
// batch (apiserver.ForwarderConfig.BatchAlways); set before agents start.
var forwardBatchAlways bool

// handler is everything the agent serves: its own agent-to-agent endpoints,
// then the API behind the forwarder (writes to the leader, reads per their
// consistency, see NewForwarder).
func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/cluster/promote", a.servePromote)
	mux.HandleFunc("/v1/cluster/demote", a.serveDemote)
	mux.HandleFunc("/v1/cluster/replica", a.serveReplica)
	mux.Handle("GET /api/v1/namespaces/{ns}/pods/{name}/log", a.servePodHost("log"))
	// exec, attach and portforward: GET for kubectl's WebSocket upgrades,
	// POST for Shoal's own exec and SPDY upgrades.
	for _, sub := range []string{"exec", "attach", "portforward"} {
		mux.Handle("GET /api/v1/namespaces/{ns}/pods/{name}/"+sub, a.servePodHost(sub))
		mux.Handle("POST /api/v1/namespaces/{ns}/pods/{name}/"+sub, a.servePodHost(sub))
	}
	for _, p := range identityPaths {
		mux.HandleFunc(p, a.serveIdentity)
	}
	mux.HandleFunc(identity.PathGossipKeys, a.serveGossipKeys)
	fc := apiserver.ForwarderConfig{
		Route:  agentRoute{a},
		Logger: a.log,
		Name:   a.cfg.NodeName,
		// Writes other agents forward in batches are authenticated
		// each on its own, with the user's token when they carry one.
		Frames:      a.withAuth,
		BatchAlways: forwardBatchAlways,
		// Streams of forwarded writes end when the API server stops.
		Done: a.apiStopping,
	}
	if a.tls != nil {
		fc.TLS = a.tls.ClientConfig()
	}
	// Prometheus scrapes with a read-only token or an agent certificate
	// (apiserver.Authorize).
	mux.Handle("/metrics", metrics.Local(a.metrics.Handler()))
	mux.Handle("/", apiserver.NewForwarder(metrics.Local(a.server.Handler()), fc))
	return mux
}

// roleChange is the body of POST /v1/cluster/promote and /demote.
type roleChange struct {
	Cluster string `json:"cluster"`
	// Leader is the node name of the agent asking (the leader).
	Leader string `json:"leader"`
}

// promoteAnswer is the answer to POST /v1/cluster/promote.
type promoteAnswer struct {
	RaftAddr string `json:"raftAddr"`
}

// servePromote: the leader's voter manager asks this agent to start Raft
// (empty, not bootstrapping) before it adds it as a voter. The answer comes
// once Raft listens.
func (a *Agent) servePromote(w http.ResponseWriter, r *http.Request) {
	req, ok := a.readRoleChange(w, r)
	if !ok {
		return
	}
	if err := a.requestRole(r.Context(), true, req.Cluster, req.Leader); err != nil {
		a.server.WriteError(w, r, api.NewServiceUnavailable("promotion failed: "+err.Error()))
		return
	}
	a.server.WriteJSON(w, r, http.StatusOK, promoteAnswer{RaftAddr: a.raftAdv})
}

// serveDemote: the leader removed this agent from the Raft configuration;
// it stops Raft and becomes a non-voter.
func (a *Agent) serveDemote(w http.ResponseWriter, r *http.Request) {
	req, ok := a.readRoleChange(w, r)
	if !ok {
		return
	}
	if err := a.requestRole(r.Context(), false, req.Cluster, req.Leader); err != nil {
		a.server.WriteError(w, r, api.NewServiceUnavailable("demotion failed: "+err.Error()))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readRoleChange reads a role change and checks who asks (roleCaller):
// req.Leader is then the node asking, as authenticated.
func (a *Agent) readRoleChange(w http.ResponseWriter, r *http.Request) (roleChange, bool) {
	var req roleChange
	if r.Method != http.MethodPost {
		a.server.MethodNotAllowed(w, r, "POST")
		return req, false
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&req); err != nil {
		a.server.WriteError(w, r, api.NewBadRequest("the body must be {\"cluster\": ID}: %v", err))
		return req, false
	}
	caller, err := a.roleCaller(r.Context(), r, req)
	if err != nil {
		a.server.WriteError(w, r, err)
		return req, false
	}
	req.Leader = caller
	return req, true
}

// agentRoute tells the forwarder where requests go, from Raft (on a voter)
// and gossip metadata.
type agentRoute struct{ a *Agent }

func (r agentRoute) LocalStore() bool { return r.a.Node() != nil }

func (r agentRoute) IsLeader() bool {
	n := r.a.Node()
	return n != nil && n.IsLeader()
}

func (r agentRoute) LeaderAPI() string {
	id := r.a.leaderID()
	if id == "" || id == r.a.cfg.NodeName {
		return ""
	}
	return r.a.memberAPI(id)
}

func (r agentRoute) VoterAPIs() []string { return r.a.voterAPIs() }

// LeaderTrouble: a request forwarded to the leader this non-voter knows
// got no answer, or a 503. Its next leader round asks the voters, even
// while gossip names that leader (a leader that crashed stays alive in
// gossip for seconds; an older agent that took over advertises nothing).
func (r agentRoute) LeaderTrouble(upstream string) {
	if r.a.Node() != nil {
		return // a voter knows from Raft
	}
	r.a.leader.troubles.Add(1)
	r.a.kicks.kick(kickLeader)
}

// leaderID is the leader as this agent knows it: from Raft on a voter,
// on a non-voter from gossip or trackLeader (nonvoterLeader).
func (a *Agent) leaderID() string {
	if n := a.Node(); n != nil {
		id, _ := n.Leader()
		return id
	}
	id, _ := a.nonvoterLeader()
	return id
}

// nonvoterLeader is a non-voter's best knowledge of the leader: of what
// gossip says (the alive voter advertising the highest leader term) and
// what the voters last answered trackLeader, the one at the later term;
// at the same term gossip when the voters named no one or the same agent,
// the voters' answer when they named another.
func (a *Agent) nonvoterLeader() (string, uint64) {
	id, term := a.leader.getBoth()
	gid, gterm := a.gossipLeader()
	if gid != "" && (gterm > term || (gterm == term && (id == "" || id == gid))) {
		return gid, gterm
	}
	// At the same term, a voter's answer naming another agent wins over
	// gossip (a leader that stepped down may advertise its term a moment).
	return id, term
}

// gossipLeader is the alive voter of this cluster that advertises the
// highest leader term in gossip, and that term; "" when none does (no
// leader, or agents too old to advertise it). It reads the voters only.
func (a *Agent) gossipLeader() (string, uint64) {
	if a.gossip == nil {
		return "", 0
	}
	// Asked for every forwarded request and by the forwarder's leader
	// watch 40 times a second while requests wait: the scan is redone
	// only when the member table or the cluster id changed.
	version, cluster := a.gossip.Version(), a.ClusterID()
	c := &a.gossipLead
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.valid && c.version == version && c.cluster == cluster {
		return c.id, c.term
	}
	var id string
	var term uint64
	a.gossip.EachVoter(func(m gossip.Member) bool {
		if m.State != gossip.Alive || (cluster != "" && m.Meta.ClusterID != cluster) {
			return true
		}
		// Two voters at one term (one stepped down and has not said so
		// yet): the same one every time, whatever the map's order.
		if t := m.Meta.LeaderTerm; t > term || (t == term && t != 0 && m.Name < id) {
			id, term = m.Name, t
		}
		return true
	})
	// A change between Version and the scan leaves a newer version in the
	// table than recorded here: the next call scans again.
	c.valid, c.version, c.cluster, c.id, c.term = true, version, cluster, id, term
	return id, term
}

// gossipLeaderCache is gossipLeader's last answer and what it was read
// from.
type gossipLeaderCache struct {
	mu      sync.Mutex
	valid   bool
	version uint64 // gossip.Version
	cluster string
	id      string
	term    uint64
}

// memberAPI is the API address an alive member advertises, "" if unknown.
func (a *Agent) memberAPI(id string) string {
	if id == "" || a.gossip == nil {
		return ""
	}
	if m, ok := a.gossip.Member(id); ok && m.State == gossip.Alive {
		return m.Meta.APIAddr
	}
	return ""
}

// memberRaft is the Raft address an alive member advertises, "" if
// unknown.
func (a *Agent) memberRaft(id string) string {
	if id == "" || a.gossip == nil {
		return ""
	}
	if m, ok := a.gossip.Member(id); ok && m.State == gossip.Alive {
		return m.Meta.RaftAddr
	}
	return ""
}

// voterAPIs lists the API addresses of the alive voters of this agent's
// cluster other than itself, the leader first.
func (a *Agent) voterAPIs() []string {
	if a.gossip == nil {
		return nil
	}
	cid, leader := a.ClusterID(), a.leaderID()
	var ms []gossip.Member
	a.gossip.EachVoter(func(m gossip.Member) bool {
		if m.Name != a.cfg.NodeName && m.State == gossip.Alive && !m.Meta.Leaving &&
			m.Meta.APIAddr != "" && (cid == "" || m.Meta.ClusterID == cid) {
			ms = append(ms, m)
		}
		return true
	})
	slices.SortFunc(ms, func(x, y gossip.Member) int {
		switch {
		case x.Name == y.Name:
			return 0
		case x.Name == leader:
			return -1
		case y.Name == leader:
			return 1
		}
		return strings.Compare(x.Name, y.Name)
	})
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Meta.APIAddr
	}
	return out
}

// notLeaderAPI is a Raft node's *consensus.ErrNotLeader, which names the
// leader's Raft address, with the leader's API address, the one a client
// can use; the API server names it in its 503 (LeaderAddress).
type notLeaderAPI struct {
	err     *consensus.ErrNotLeader
	apiAddr string // "" if the leader is unknown or not alive in gossip
}

func (e *notLeaderAPI) Error() string {
	if e.apiAddr == "" {
		return e.err.Error()
	}
	return fmt.Sprintf("not the leader; the leader is %s, its API at %s", e.err.LeaderID, e.apiAddr)
}

func (e *notLeaderAPI) Unwrap() error         { return e.err }
func (e *notLeaderAPI) LeaderAddress() string { return e.apiAddr }

// leaderAPIError gives an ErrNotLeader from this agent's Raft node the
// leader's API address; other errors pass unchanged.
func (a *Agent) leaderAPIError(err error) error {
	var nl *consensus.ErrNotLeader
	if !errors.As(err, &nl) {
		return err
	}
	return &notLeaderAPI{err: nl, apiAddr: a.memberAPI(nl.LeaderID)}
}

// leaderCache is a non-voter's knowledge of the leader's ID, and of the
// Raft term it was named at.
type leaderCache struct {
	mu   sync.Mutex
	id   string
	term uint64
	// asks are this agent's asks of voters in flight, shared among
	// askLeader's callers.
	asks voterAsks
	// troubles counts LeaderTrouble reports.
	troubles atomic.Uint64
}

func (c *leaderCache) getTerm() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.term
}

func (c *leaderCache) getBoth() (string, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id, c.term
}

func (c *leaderCache) set(id string, term uint64) {
	c.mu.Lock()
	c.id, c.term = id, term
	c.mu.Unlock()
}

// trackLeader keeps a non-voter's leaderCache current by asking the voters
// (GET /v1/cluster/raft); a voter knows the leader from Raft. It asks
// every Interval/2 while a leader is known and alive in gossip, and more
// often while none is (from 100ms, doubling up to Interval/2: a hundred
// agents asking every voter ten times a second during an election would
// be a load of their own). A membership change makes it ask at once only
// when it changed the alive voters or the known leader's liveness: with
// hundreds of members, joins, leaves and metadata updates of workers are
// frequent and say nothing about the leader, and asking on each was one
// round of requests per agent per gossip event.
func (a *Agent) trackLeader(ctx context.Context) {
	// An ask that times out closes its connection, and the next one pays
	// a TLS handshake, which on a starved host took seconds by itself, so
	// every ask timed out and no leader was known: a request may take
	// leaderRequestTimeout, while a round waits for leaderAskTimeout.
	hc := &http.Client{Timeout: leaderRequestTimeout, Transport: a.peerTr}
	var asked time.Time     // the last ask of the voters
	var troublesSeen uint64 // LeaderTrouble reports answered by an ask
	period := a.cfg.Interval / 2
	trackLoop(ctx, a.kicks.sub(kickLeader), period, func() (bool, string) {
		if a.Node() != nil || a.Role() != gossip.RoleNonvoter {
			return true, ""
		}
		// While gossip names an alive leader, and it is the one this
		// agent goes by, the voters are asked only every
		// leaderConfirmRounds rounds (a thousand agents asking the leader
		// twice a second were a load of their own), or at the next round
		// after a forwarded request failed there (LeaderTrouble), at most
		// once a round as before.
		since := time.Since(asked)
		troubles := a.leader.troubles.Load()
		gid, _ := a.gossipLeader()
		nid, _ := a.nonvoterLeader()
		troubled := troubles != troublesSeen && since >= period
		if gid != "" && nid == gid && a.memberAPI(gid) != "" && since < leaderConfirmRounds*period && !troubled {
			return true, a.leaderView()
		}
		asked, troublesSeen = time.Now(), troubles
		id, term := a.askLeader(ctx, hc)
		a.leader.set(id, term)
		id, _ = a.nonvoterLeader()
		return id != "" && a.memberAPI(id) != "", a.leaderView()
	}, a.leaderView)
}

// LeaderAsks counts the requests this agent has sent to voters to learn
// who leads (GET /v1/cluster/raft): a non-voter's cost to the voters, which
// gossip keeps low (benchmarks read it).
func (a *Agent) LeaderAsks() uint64 { return a.leader.asks.sent.Load() }

// leaderConfirmRounds: while gossip names the leader, a non-voter still
// asks the voters every this many of trackLeader's rounds (10 s with the
// default --interval), in case gossip's word is stale.
const leaderConfirmRounds = 20

// trackLoop calls ask every period while it reports a leader known, and
// from 100ms doubling up to period while not; a kick makes it ask at once
// unless view() still reads what ask returned ("" always asks).
func trackLoop(ctx context.Context, kick <-chan struct{}, period time.Duration, ask func() (bool, string), view func() string) {
	const fastest = 100 * time.Millisecond
	retry := fastest
	for {
		wait := period
		known, asked := ask()
		if known {
			retry = fastest
		} else {
			wait = min(wait, retry)
			retry = min(2*retry, max(period, fastest))
		}
		t := time.NewTimer(wait)
	waiting:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-kick:
				if asked != "" && view() == asked {
					continue // nothing the answer depends on changed
				}
				t.Stop()
			case <-t.C:
			}
			break waiting
		}
	}
}

// leaderAskTimeout bounds how long a round of trackLeader waits for the
// voters' answers; leaderFirstTimeout how long it waits for the known
// leader alone in the steady state, after which every voter is asked (as
// before the steady-state ask existed). Neither cuts a request: a request
// runs until it is answered or leaderRequestTimeout (two TLS handshakes'
// worth) has passed, and the next round takes its answer (voterAsks).
const (
	leaderAskTimeout     = 3 * time.Second
	leaderFirstTimeout   = time.Second
	leaderRequestTimeout = 2 * peerHandshakeTimeout
)

// leaderView is what a non-voter's knowledge of the leader depends on:
// the alive voters' API addresses and whether the leader it knows is
// alive, in gossip, and the LeaderTrouble reports so far.
func (a *Agent) leaderView() string {
	return fmt.Sprint(a.voterAPIs(), a.memberAPI(a.leaderID()) != "", a.leader.troubles.Load())
}

// leaderAnswer is what one voter says about the leader; ok is false when
// it said nothing (no answer, an error, an answer that did not decode).
type leaderAnswer struct {
	id   string
	term uint64
	ok   bool
}

// askLeader asks the voters which agent leads (see askLeaderOf).
func (a *Agent) askLeader(ctx context.Context, hc *http.Client) (string, uint64) {
	voters := a.voterAPIs() // the known leader first, when it is alive
	urls := make([]string, len(voters))
	for i, v := range voters {
		urls[i] = a.agentURL(v, "/v1/cluster/raft")
	}
	id, _ := a.nonvoterLeader()
	leaderFirst := id != "" && a.Node() == nil && a.memberAPI(id) != ""
	return askLeaderOf(ctx, &a.leader.asks, hc, urls, leaderFirst, a.leader.getTerm())
}

// askLeaderOf returns the leader named at the highest Raft term by the
// voters whose /v1/cluster/raft are urls, given the term known so far.
//
// When leaderFirst (urls[0] is the leader known and alive in gossip) it
// asks that voter alone, and is done if it still names a leader at the
// known term or later: one request per round in the steady state instead
// of one per voter. Otherwise, or when that voter has not answered within
// leaderFirstTimeout, it asks every voter at once and returns as soon as
// one names a leader at a term above the one known (a new leader), once a
// majority answered, once every voter answered or failed (a failure, or
// a voter backed off after one, does not count as an answer), or after
// leaderAskTimeout: a paused or cut-off voter, which answers nothing, must
// not delay the news.
//
// The asks go through asks (voterAsks): a request still running when the
// round returns is left to finish (hc's timeout bounds it) rather than
// cancelled, and the next round waits for its answer instead of sending
// another. Cancelling a request closes its connection, and the next round
// paid a new TLS handshake with that voter: with a hundred agents tracking
// the leader every half second in a starved process, that was hundreds of
// handshakes a second, and half of all the dials of a hundred-node start.
func askLeaderOf(ctx context.Context, asks *voterAsks, hc *http.Client, urls []string, leaderFirst bool, known uint64) (string, uint64) {
	if leaderFirst && len(urls) > 0 {
		// A leader that went silent (a host cut off, not crashed) must
		// not hold the news back for hc's whole timeout.
		lctx, cancel := context.WithTimeout(ctx, leaderFirstTimeout)
		ans := asks.ask(lctx, hc, urls[0])
		cancel()
		if ans.id != "" && ans.term >= known {
			return ans.id, ans.term
		}
	}
	rctx, cancel := context.WithTimeout(ctx, leaderAskTimeout)
	defer cancel()
	answers := make(chan leaderAnswer, len(urls)) // buffered: stragglers never block
	for _, u := range urls {
		go func() { answers <- asks.ask(rctx, hc, u) }()
	}
	var best leaderAnswer
	answered := 0
	for range urls {
		var ans leaderAnswer
		select {
		case ans = <-answers:
		case <-rctx.Done():
			return best.id, best.term
		}
		if ans.ok {
			answered++
		}
		if ans.id != "" && ans.term >= best.term {
			best = ans
		}
		if best.term > known || answered > len(urls)/2 {
			break
		}
	}
	return best.id, best.term
}

// voterAsks are one agent's asks of voters in flight: at most one request
// per voter URL runs at a time, and every caller that wants that voter's
// answer meanwhile waits for it. A request does not end with its callers:
// it runs until it is answered or the client's timeout, so that a caller
// that stops waiting (a round's deadline) does not cut it, which would
// close its connection. After a request that got no answer (a timeout, a
// failed connection or handshake), that voter is not asked again for a
// back-off (retryBackoff from voterAskFirstRetry to voterAskMaxRetry):
// callers get no answer from it at once, and ask the others. On a starved
// host every retry was a new TLS handshake that timed out in its turn.
// The zero value is ready.
type voterAsks struct {
	sent    atomic.Uint64 // requests sent, for LeaderAsks
	mu      sync.Mutex
	flights map[string]*voterAsk
	failing map[string]*voterFailure
	now     func() time.Time // nil means time.Now (tests set it)
}

// Back-off of the asks of a voter that gave no answer, and the bound of
// voterAsks.failing (voters that failed and vanished are forgotten).
const (
	voterAskFirstRetry = 250 * time.Millisecond
	voterAskMaxRetry   = 5 * time.Second
	maxFailingVoters   = 64
)

// voterAsk is one request in flight; ans is set before done closes.
type voterAsk struct {
	done chan struct{}
	ans  leaderAnswer
}

// voterFailure is a voter whose last ask got no answer: it is not asked
// again before until.
type voterFailure struct {
	retry retryBackoff
	until time.Time
}

func (g *voterAsks) clock() time.Time {
	if g.now != nil {
		return g.now()
	}
	return time.Now()
}

// ask returns what the voter at url answers, from the request in flight
// to it if there is one, else from a new one sent through hc, which must
// have a timeout; no answer if ctx ends first, or at once while the voter
// is backed off after a failure.
func (g *voterAsks) ask(ctx context.Context, hc *http.Client, url string) leaderAnswer {
	g.mu.Lock()
	f, ok := g.flights[url]
	if !ok {
		if fl := g.failing[url]; fl != nil && g.clock().Before(fl.until) {
			g.mu.Unlock()
			return leaderAnswer{}
		}
		f = &voterAsk{done: make(chan struct{})}
		if g.flights == nil {
			g.flights = map[string]*voterAsk{}
		}
		g.flights[url] = f
		g.sent.Add(1)
		rctx := context.WithoutCancel(ctx)
		go func() {
			f.ans = askVoter(rctx, hc, url)
			g.mu.Lock()
			delete(g.flights, url)
			g.settle(url, f.ans.ok)
			g.mu.Unlock()
			close(f.done)
		}()
	}
	g.mu.Unlock()
	select {
	case <-f.done:
		return f.ans
	case <-ctx.Done():
		return leaderAnswer{}
	}
}

// settle records how an ask of url ended; g.mu is held.
func (g *voterAsks) settle(url string, answered bool) {
	if answered {
		delete(g.failing, url)
		return
	}
	now := g.clock()
	if g.failing == nil {
		g.failing = map[string]*voterFailure{}
	}
	if len(g.failing) >= maxFailingVoters {
		for u, fl := range g.failing {
			if !now.Before(fl.until) {
				delete(g.failing, u)
			}
		}
	}
	fl := g.failing[url]
	if fl == nil {
		if len(g.failing) >= maxFailingVoters {
			return // only voters that failed very recently: ask this one as before
		}
		fl = &voterFailure{retry: retryBackoff{first: voterAskFirstRetry, limit: voterAskMaxRetry}}
		g.failing[url] = fl
	}
	fl.until = now.Add(fl.retry.next())
}

// askVoter asks one voter (at the URL of its /v1/cluster/raft) which agent
// leads.
func askVoter(ctx context.Context, hc *http.Client, url string) leaderAnswer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return leaderAnswer{}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return leaderAnswer{}
	}
	defer resp.Body.Close()
	var st struct {
		LeaderID string
		Term     uint64
	}
	if resp.StatusCode != http.StatusOK {
		return leaderAnswer{}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return leaderAnswer{}
	}
	return leaderAnswer{id: st.LeaderID, term: st.Term, ok: true}
}

// membersView serves /v1/cluster/members.
func (a *Agent) membersView() any {
	if a.gossip == nil {
		return apiserver.MembersView(nil)
	}
	return apiserver.MembersView(a.gossip.Members())
}
