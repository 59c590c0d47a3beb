package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/pki"
	"github.com/shoal-dev/shoal/consensus/store"
)

// failTransport fails the test if a request goes over the network.
type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("request to %s went over the network", r.URL)
	return nil, errors.New("no network in this test")
}

// selfClient serves h in-process for https://127.0.0.1:1 (nothing listens
// there: a request that reached the network would fail).
func selfClient(t *testing.T, src TLSSource, h http.Handler) (*http.Client, *selfTransport) {
	tr := newSelfTransport("127.0.0.1:1", failTransport{t}, src, slog.New(slog.DiscardHandler))
	tr.serve(h)
	return &http.Client{Transport: tr}, tr
}

func TestSelfTransportServesWithTheAgentsIdentity(t *testing.T) {
	ca := newTestCA(t)
	src := ca.source(t, "n1", pki.RoleWorker)
	c, _ := selfClient(t, src, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := pki.PeerFromState(r.TLS)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, strings.Join([]string{p.Node, string(p.Role), boolString(ok), r.Method, r.URL.RequestURI(), r.Host, r.RemoteAddr, string(body), r.Header.Get("Expect")}, "|"))
	}))
	req, err := http.NewRequest(http.MethodPost, "https://127.0.0.1:1/api/v1/namespaces/x/pods?watch=0", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Expect", "100-continue")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	want := "n1|worker|true|POST|/api/v1/namespaces/x/pods?watch=0|127.0.0.1:1|127.0.0.1:0|hello|"
	if resp.StatusCode != http.StatusCreated || string(got) != want || resp.ContentLength != int64(len(want)) {
		t.Fatalf("got %d %q (length %d), want 201 %q", resp.StatusCode, got, resp.ContentLength, want)
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// A certificate the listener would refuse (here: revoked, as the peer
// check says) is refused in-process too.
func TestSelfTransportRefusesARevokedOwnCertificate(t *testing.T) {
	ca := newTestCA(t)
	src := ca.source(t, "n1", pki.RoleWorker)
	src.SetPeerCheck(func(p pki.Peer) error { return errors.New("revoked") })
	c, _ := selfClient(t, src, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the handler ran for a refused certificate")
	}))
	if _, err := c.Get("https://127.0.0.1:1/x"); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("request with a revoked own certificate: %v", err)
	}
}

func TestSelfTransportSendsOtherHostsOnAndStopsWithTheServer(t *testing.T) {
	other := 0
	tr := newSelfTransport("127.0.0.1:1", roundTripFunc(func(r *http.Request) (*http.Response, error) {
		other++
		return nil, errors.New("network")
	}), nil, slog.New(slog.DiscardHandler))
	c := &http.Client{Transport: tr}
	// Before the handler is set, and for another host, requests take the
	// network.
	c.Get("https://127.0.0.1:1/x")
	tr.serve(http.NotFoundHandler())
	c.Get("https://127.0.0.2:1/x")
	if other != 2 {
		t.Fatalf("%d requests took the network, want 2", other)
	}
	if resp, err := c.Get("https://127.0.0.1:1/x"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("in-process: %v %v", resp, err)
	}
	tr.close()
	if _, err := c.Get("https://127.0.0.1:1/x"); !errors.Is(err, errSelfAPIClosed) {
		t.Fatalf("after close: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A flushed response (a watch) reaches the client before the handler
// returns, and closing its body ends the handler's context.
func TestSelfTransportStreamsAndCloseEndsTheHandler(t *testing.T) {
	ended := make(chan struct{})
	c, _ := selfClient(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(ended)
		rc := http.NewResponseController(w)
		io.WriteString(w, "first\n")
		if err := rc.Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		<-r.Context().Done()
	}))
	resp, err := c.Get("https://127.0.0.1:1/watch")
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	resp.Body.Close()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("closing the body did not end the handler")
	}
}

// A client that stops reading a stream does not pin its handler past the
// write deadline, as a connection's write timeout would not.
func TestSelfTransportWriteDeadlineCutsAStalledStream(t *testing.T) {
	werr := make(chan error, 1)
	c, _ := selfClient(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.Flush()
		chunk := strings.Repeat("x", 4096)
		for range 1000 {
			rc.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := io.WriteString(w, chunk); err != nil {
				werr <- err
				return
			}
			if err := rc.Flush(); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}))
	resp, err := c.Get("https://127.0.0.1:1/watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	select {
	case err := <-werr:
		if err == nil {
			t.Fatal("every write of a stream no one reads succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler is still writing to a stream no one reads")
	}
}

// A request whose context ends before the answer returns the context's
// error, and the handler's context ends with it.
func TestSelfTransportCancelledRequest(t *testing.T) {
	started, ended := make(chan struct{}), make(chan struct{})
	c, _ := selfClient(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		close(ended)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://127.0.0.1:1/slow", nil)
	go func() { <-started; cancel() }()
	if _, err := c.Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request: %v", err)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context did not end with the request's")
	}
}

// A handler that panics gives the client an error, not a hang, and does
// not take the process down.
func TestSelfTransportHandlerPanic(t *testing.T) {
	c, _ := selfClient(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	if _, err := c.Get("https://127.0.0.1:1/x"); err == nil {
		t.Fatal("a panicking handler answered")
	}
}

// A large answer streams instead of being held whole.
func TestSelfTransportLargeAnswer(t *testing.T) {
	want := strings.Repeat("y", 3*selfStreamAfter+5)
	c, _ := selfClient(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(want); i += 1000 {
			io.WriteString(w, want[i:min(i+1000, len(want))])
		}
	}))
	resp, err := c.Get("https://127.0.0.1:1/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || string(got) != want || resp.ContentLength != -1 {
		t.Fatalf("large answer: %d bytes (length %d), %v", len(got), resp.ContentLength, err)
	}
}

// An agent's own requests (its Node registration, its Events) are served
// in the process: the API listener of a lone secure agent accepts no
// connection while the agent registers and records its leadership.
func TestAgentTalksToItsOwnAPIInProcess(t *testing.T) {
	h := newSecureHarness(t, fastTimings)
	cfg := h.config("solo", "")
	cfg.BootstrapExpect = 1
	ta := h.start(cfg)[0]
	waitUntil(t, 30*time.Second, "the Node and the leadership Event in the store", func() string {
		st := ta.Store()
		if st == nil {
			return "no store yet"
		}
		if _, err := st.Get(store.Key{Kind: "Node", Name: "solo"}); err != nil {
			return "node: " + err.Error()
		}
		evs, _, err := st.List("Event", "default", store.Selector{})
		if err != nil || len(evs) == 0 {
			return fmt.Sprintf("events: %d, %v", len(evs), err)
		}
		return ""
	})
	if n := ta.apiConns.accepted.Load(); n != 0 {
		t.Fatalf("the API listener accepted %d connections; the agent's own requests should not connect", n)
	}
}
