package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeVoter serves /v1/cluster/raft naming leader at term after delay,
// counting requests and new connections.
type fakeVoter struct {
	srv                                  *httptest.Server
	requests, answered, cancelled, conns atomic.Int64
}

func newFakeVoter(t *testing.T, leader string, term uint64, delay time.Duration) *fakeVoter {
	fv := &fakeVoter{}
	fv.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fv.requests.Add(1)
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				fv.cancelled.Add(1)
				return
			}
		}
		fmt.Fprintf(w, `{"LeaderID":%q,"Term":%d}`, leader, term)
		fv.answered.Add(1)
	}))
	fv.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			fv.conns.Add(1)
		}
	}
	fv.srv.Start()
	t.Cleanup(fv.srv.Close)
	return fv
}

func (fv *fakeVoter) url() string { return fv.srv.URL + "/v1/cluster/raft" }

// In the steady state (a leader known and alive) a non-voter asks the
// leader alone: before, every round asked every voter, three requests per
// agent every half second.
func TestAskLeaderSteadyStateAsksTheLeaderOnly(t *testing.T) {
	vs := []*fakeVoter{newFakeVoter(t, "v0", 5, 0), newFakeVoter(t, "v0", 5, 0), newFakeVoter(t, "v0", 5, 0)}
	urls := []string{vs[0].url(), vs[1].url(), vs[2].url()}
	hc := &http.Client{Timeout: 5 * time.Second}
	for range 10 {
		id, term := askLeaderOf(context.Background(), &voterAsks{}, hc, urls, true, 5)
		if id != "v0" || term != 5 {
			t.Fatalf("askLeaderOf = %q, %d; want v0, 5", id, term)
		}
	}
	if got := vs[0].requests.Load(); got != 10 {
		t.Errorf("leader asked %d times in 10 rounds, want 10", got)
	}
	if got := vs[1].requests.Load() + vs[2].requests.Load(); got != 0 {
		t.Errorf("followers asked %d times in the steady state, want 0", got)
	}
	// A leader that no longer names one sends the round to every voter.
	stale := newFakeVoter(t, "", 6, 0)
	id, _ := askLeaderOf(context.Background(), &voterAsks{}, hc, []string{stale.url(), vs[1].url(), vs[2].url()}, true, 5)
	if id != "v0" || vs[1].requests.Load()+vs[2].requests.Load() == 0 {
		t.Errorf("after the leader named none: got %q with %d follower asks; want v0 from the followers", id, vs[1].requests.Load()+vs[2].requests.Load())
	}
}

// A voter slower than the majority is not cut off: cancelling its request
// closed the connection, so every round cost a new (TLS) connection to
// it: hundreds of handshakes a second with a hundred agents.
func TestAskLeaderLetsTheSlowVoterAnswer(t *testing.T) {
	fast0, fast1 := newFakeVoter(t, "v0", 3, 0), newFakeVoter(t, "v0", 3, 0)
	slow := newFakeVoter(t, "v0", 3, 200*time.Millisecond)
	urls := []string{fast0.url(), fast1.url(), slow.url()}
	hc := &http.Client{Timeout: 30 * time.Second}
	const rounds = 5
	for i := range rounds {
		if id, _ := askLeaderOf(context.Background(), &voterAsks{}, hc, urls, false, 3); id != "v0" {
			t.Fatalf("round %d: leader %q, want v0", i, id)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for slow.answered.Load()+slow.cancelled.Load() < rounds {
		if time.Now().After(deadline) {
			t.Fatalf("the slow voter finished %d of %d asks within 30s", slow.answered.Load()+slow.cancelled.Load(), rounds)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := slow.cancelled.Load(); got != 0 {
		t.Errorf("%d of %d asks to the slow voter were cancelled once the majority answered; want them left to finish", got, rounds)
	}
}

// A kick that changed nothing the answer depends on does not make the
// tracker ask again: before, every gossip event (any member's join, leave
// or metadata update) made every non-voter ask every voter.
func TestTrackLoopIgnoresKicksThatChangeNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	kick := make(chan struct{})
	var asks atomic.Int64
	view := atomic.Value{}
	view.Store("v0 alive")
	done := make(chan struct{})
	go func() {
		defer close(done)
		trackLoop(ctx, kick, time.Hour, func() (bool, string) {
			asks.Add(1)
			return true, view.Load().(string)
		}, func() string { return view.Load().(string) })
	}()
	for range 100 {
		kick <- struct{}{} // unbuffered: the loop took each one
	}
	if got := asks.Load(); got != 1 {
		t.Errorf("%d asks after 100 kicks that changed nothing, want 1 (the first)", got)
	}
	view.Store("v1 alive")
	kick <- struct{}{}
	kick <- struct{}{} // taken only once the kicked ask is done
	if got := asks.Load(); got != 2 {
		t.Errorf("%d asks after a kick that changed the voters, want 2", got)
	}
	cancel()
	<-done
}

// A known leader that went silent (cut off, not crashed) holds the news
// back for leaderFirstTimeout at most, not for the client's timeout.
func TestAskLeaderSilentLeaderFallsBackToTheOthers(t *testing.T) {
	silent := newFakeVoter(t, "v0", 5, 20*time.Second)
	f1, f2 := newFakeVoter(t, "v1", 6, 0), newFakeVoter(t, "v1", 6, 0)
	hc := &http.Client{Timeout: 10 * time.Second} // the fan-out's straggler ends here
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	id, term := askLeaderOf(ctx, &voterAsks{}, hc, []string{silent.url(), f1.url(), f2.url()}, true, 5)
	if id != "v1" || term != 6 {
		t.Fatalf("askLeaderOf = %q, %d; want v1, 6 from the others", id, term)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("took %v with a silent leader; want about leaderFirstTimeout (%v)", took, leaderFirstTimeout)
	}
}

// Callers that want a voter's answer while a request to it is in flight
// wait for that request instead of sending their own: before, every round
// (and every agent's role check) sent its own, and under load the asks
// of one agent to a slow voter piled up.
func TestVoterAsksShareTheRequestInFlight(t *testing.T) {
	slow := newFakeVoter(t, "v0", 4, 300*time.Millisecond)
	hc := &http.Client{Timeout: 30 * time.Second}
	var asks voterAsks
	const callers = 10
	var got [callers]leaderAnswer
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { got[i] = asks.ask(context.Background(), hc, slow.url()) })
	}
	wg.Wait()
	for i, a := range got {
		if a.id != "v0" || a.term != 4 {
			t.Fatalf("caller %d got %+v, want v0 at term 4", i, a)
		}
	}
	if n := slow.requests.Load(); n != 1 {
		t.Errorf("%d callers sent %d requests to one voter, want 1 shared", callers, n)
	}
	// Once answered, the next caller asks again.
	if a := asks.ask(context.Background(), hc, slow.url()); a.id != "v0" || slow.requests.Load() != 2 {
		t.Errorf("a later ask got %+v after %d requests, want v0 after 2", a, slow.requests.Load())
	}
}

// A known leader that answers, but slower than leaderFirstTimeout (a
// starved host), keeps its one connection: before, the round cut its
// request at leaderFirstTimeout, which closed the connection, asked it
// again in the fan-out, and every round paid a new (TLS) connection.
func TestAskLeaderSlowLeaderKeepsItsConnection(t *testing.T) {
	lead := newFakeVoter(t, "v0", 5, leaderFirstTimeout+500*time.Millisecond)
	f1, f2 := newFakeVoter(t, "v0", 5, 0), newFakeVoter(t, "v0", 5, 0)
	urls := []string{lead.url(), f1.url(), f2.url()}
	hc := &http.Client{Timeout: 30 * time.Second}
	var asks voterAsks
	const rounds = 3
	for i := range rounds {
		if id, term := askLeaderOf(context.Background(), &asks, hc, urls, true, 5); id != "v0" || term != 5 {
			t.Fatalf("round %d: askLeaderOf = %q, %d; want v0, 5", i, id, term)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for lead.answered.Load()+lead.cancelled.Load() < lead.requests.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("the leader finished %d of %d asks within 30s", lead.answered.Load()+lead.cancelled.Load(), lead.requests.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := lead.cancelled.Load(); n != 0 {
		t.Errorf("%d asks of the slow leader were cut; want every one left to finish", n)
	}
	if n := lead.conns.Load(); n != 1 {
		t.Errorf("%d rounds opened %d connections to the slow leader, want 1", rounds, n)
	}
	if n := lead.requests.Load(); n > rounds {
		t.Errorf("%d rounds sent %d requests to the slow leader, want at most one each", rounds, n)
	}
}

// A voter that gave no answer is not asked again before a back-off: on a
// starved host every ask of it was a new TLS handshake that timed out in
// its turn, and the next round dialled again at once.
func TestVoterAsksBackOffAVoterThatFails(t *testing.T) {
	var answering atomic.Bool
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if !answering.Load() {
			http.Error(w, "starved", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"LeaderID":"v0","Term":3}`)
	}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/v1/cluster/raft"
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	asks := voterAsks{now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	hc := &http.Client{Timeout: 30 * time.Second}
	for range 20 {
		if a := asks.ask(context.Background(), hc, url); a.ok {
			t.Fatalf("a failing voter answered %+v", a)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("20 asks of a failing voter within its back-off sent %d requests, want 1", n)
	}
	// Past the first back-off (at most voterAskFirstRetry): asked again,
	// and a second failure doubles the wait.
	advance(voterAskFirstRetry)
	asks.ask(context.Background(), hc, url)
	advance(voterAskFirstRetry / 2) // the second wait is at least voterAskFirstRetry
	asks.ask(context.Background(), hc, url)
	if n := requests.Load(); n != 2 {
		t.Errorf("%d requests after the first back-off and half the second, want 2", n)
	}
	answering.Store(true)
	advance(voterAskMaxRetry)
	if a := asks.ask(context.Background(), hc, url); !a.ok || a.id != "v0" {
		t.Fatalf("after the back-off: %+v, want v0's answer", a)
	}
	// An answer ends the back-off.
	answering.Store(false)
	asks.ask(context.Background(), hc, url)
	answering.Store(true)
	advance(voterAskFirstRetry)
	if a := asks.ask(context.Background(), hc, url); !a.ok {
		t.Errorf("after one failure following an answer, the first back-off again: got %+v", a)
	}
}

// A round does not end on the empty answers of failing voters while a
// voter that answers is still to be heard: the failures come back at once
// (backed off) and used to count towards the majority.
func TestAskLeaderWaitsForTheVoterThatAnswers(t *testing.T) {
	slow := newFakeVoter(t, "v2", 7, 200*time.Millisecond)
	dead := func() string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/v1/cluster/raft"
	}
	urls := []string{dead(), dead(), slow.url()}
	hc := &http.Client{Timeout: 30 * time.Second}
	if id, term := askLeaderOf(context.Background(), &voterAsks{}, hc, urls, false, 5); id != "v2" || term != 7 {
		t.Errorf("askLeaderOf = %q, %d with two voters failing; want v2, 7 from the third", id, term)
	}
}
