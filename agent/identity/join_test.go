package identity

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/pki"
)

func TestJoinWithPinnedVoterToken(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	voter, _ := tc.tokens(t)
	l, err := Join(ctxTimeout(t, 30*time.Second), []string{tc.addr}, voter, "n2", testIPs)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	p, err := l.Peer()
	if err != nil || p.Node != "n2" || p.Role != pki.RoleVoter {
		t.Fatalf("peer = %+v, %v; want n2 voter", p, err)
	}
	if string(l.KEK) != string(tc.local.KEK) || string(l.GossipKey) != string(tc.local.GossipKey) {
		t.Errorf("a voter join must bring the cluster's KEK and gossip key")
	}
	if got := p.NotAfter.Sub(p.NotBefore); got < DefaultCertTTL || got > DefaultCertTTL+2*pki.ClockSkew {
		t.Errorf("certificate life %v, want about %v", got, DefaultCertTTL)
	}
	if l.AdminToken != "" {
		t.Errorf("a joined agent got an admin token")
	}
}

func TestJoinWorkerTokenGivesWorkerCertAndNoKEK(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	_, worker := tc.tokens(t)
	l, err := Join(ctxTimeout(t, 30*time.Second), []string{tc.addr}, worker, "w1", testIPs)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if p, _ := l.Peer(); p.Role != pki.RoleWorker {
		t.Errorf("role %q, want worker", p.Role)
	}
	if l.KEK != nil {
		t.Errorf("a worker join brought the KEK")
	}
	if len(l.GossipKey) != KeyBytes {
		t.Errorf("gossip key: %d bytes", len(l.GossipKey))
	}
}

func TestJoinRefusesWrongFingerprintAtOnce(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	other := newTestCluster(t, clusterOpts{})
	voter, _ := other.tokens(t) // pins the other cluster's CA
	start := time.Now()
	_, err := Join(ctxTimeout(t, time.Minute), []string{tc.addr}, voter, "n2", testIPs)
	var pe *PermanentError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "presents CA fingerprint") || !strings.Contains(err.Error(), voter.Fingerprint) {
		t.Fatalf("Join: %v; want a permanent fingerprint mismatch naming the pin", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Join took %v: a fingerprint mismatch must not be retried", d)
	}
	if n := tc.joins.Load(); n != 0 {
		t.Errorf("%d certificate requests reached the impostor; want 0", n)
	}
}

func TestJoinWithRotatedTokenStopsAtOnce(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	_, old := tc.tokens(t)
	resp := tc.rotate(t, pki.RoleWorker)
	_, err := Join(ctxTimeout(t, time.Minute), []string{tc.addr}, old, "w1", testIPs)
	var pe *PermanentError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Join with a rotated token: %v; want a permanent 401", err)
	}
	if n := tc.joins.Load(); n != 1 {
		t.Errorf("%d join requests; a 401 must not be retried", n)
	}
	if _, err := Join(ctxTimeout(t, 30*time.Second), []string{tc.addr}, mustToken(t, resp.Worker), "w1", testIPs); err != nil {
		t.Errorf("Join with the new token: %v", err)
	}
	// The voter token did not change.
	voter, _ := tc.tokens(t)
	if _, err := Join(ctxTimeout(t, 30*time.Second), []string{tc.addr}, voter, "v2", testIPs); err != nil {
		t.Errorf("Join with the voter token after a worker rotation: %v", err)
	}
}

func TestJoinWithBootstrapToken(t *testing.T) {
	bt, err := pki.NewBootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	tc := newTestCluster(t, clusterOpts{bootstrap: &bt})
	if string(tc.local.GossipKey) != string(pki.GossipKeyFromSecret(bt.Secret)) {
		t.Errorf("the bootstrap node's gossip key is not the one derived from the bootstrap token")
	}
	l, err := Join(ctxTimeout(t, 30*time.Second), []string{tc.addr}, bt, "n2", testIPs)
	if err != nil {
		t.Fatalf("Join with the bootstrap token: %v", err)
	}
	if p, _ := l.Peer(); p.Role != pki.RoleVoter || l.KEK == nil {
		t.Errorf("role %q, KEK %v: a bootstrap token makes voters", p.Role, l.KEK != nil)
	}
	if string(l.GossipKey) != string(pki.GossipKeyFromSecret(bt.Secret)) {
		t.Errorf("joined gossip key differs from the derived one")
	}
	// The pinned voter token of that cluster carries the same secret.
	voter, _ := tc.tokens(t)
	if voter.Secret != bt.Secret {
		t.Errorf("voter secret is not the bootstrap token's")
	}
	// Once the voter token is rotated, the bootstrap token is dead.
	tc.rotate(t, pki.RoleVoter)
	if _, err := Join(ctxTimeout(t, time.Minute), []string{tc.addr}, bt, "n3", testIPs); !errors.As(err, new(*PermanentError)) {
		t.Errorf("Join with the bootstrap token after the voter rotation: %v; want a permanent error", err)
	}
}

func TestJoinBootstrapTokenRefusesServerWithoutTheSecret(t *testing.T) {
	bt, _ := pki.NewBootstrapToken()
	other, _ := pki.NewBootstrapToken()
	impostors := []*testCluster{
		newTestCluster(t, clusterOpts{bootstrap: &other}), // proves another secret
		newTestCluster(t, clusterOpts{}),                  // proves nothing
	}
	for i, imp := range impostors {
		_, err := Join(ctxTimeout(t, time.Minute), []string{imp.addr}, bt, "n2", testIPs)
		if !errors.As(err, new(*PermanentError)) || !strings.Contains(err.Error(), "does not prove") {
			t.Errorf("impostor %d: Join = %v; want a permanent refusal", i, err)
		}
		if n := imp.joins.Load(); n != 0 {
			t.Errorf("impostor %d: %d certificate requests sent to it", i, n)
		}
	}
}

func TestJoinRetriesUntilAnAgentAnswers(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	voter, _ := tc.tokens(t)
	tc.cluster.leader.Store(false) // 503 until it leads
	done := make(chan error, 1)
	go func() {
		_, err := Join(ctxTimeout(t, time.Minute), []string{"127.0.0.1:1", tc.addr}, voter, "n2", testIPs)
		done <- err
	}()
	eventually(t, 30*time.Second, "a join attempt on the non-leader", func() bool { return tc.joins.Load() > 0 })
	tc.cluster.leader.Store(true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Join: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Join did not finish after the agent became leader")
	}
}

func TestRotationWhileJoinsFlow(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{cfg: ServerConfig{FailureLimit: 1 << 20}})
	const rounds, joiners = 4, 4
	stop := make(chan struct{})
	var bg sync.WaitGroup
	// Joins with stale tokens keep failing in the background.
	_, stale := tc.tokens(t)
	bg.Add(1)
	go func() {
		defer bg.Done()
		for i := 0; i < 1000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			Join(ctxTimeout(t, 10*time.Second), []string{tc.addr}, stale, "stale", testIPs)
		}
	}()
	for r := range rounds {
		resp := tc.rotate(t, pki.RoleWorker)
		tok := mustToken(t, resp.Worker)
		errs := make(chan error, joiners+1)
		go func() { // the other role's rotations race with the joins
			var tr TokensResponse
			for range 2 {
				if code := tc.adminCall(t, http.MethodPost, PathTokensRotate, RotateRequest{Role: "voter"}, tc.admin, &tr); code != http.StatusOK {
					errs <- errors.New("voter rotation: HTTP " + http.StatusText(code))
					return
				}
			}
			errs <- nil
		}()
		for j := range joiners {
			go func() {
				_, err := Join(ctxTimeout(t, time.Minute), []string{tc.addr}, tok, "w"+string(rune('a'+r))+string(rune('a'+j)), testIPs)
				errs <- err
			}()
		}
		for range joiners + 1 {
			if err := <-errs; err != nil {
				t.Errorf("round %d: a join with the new token failed: %v", r, err)
			}
		}
	}
	close(stop)
	bg.Wait()
}

func TestJoinRequestsOnlyOnLeader(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	tc.cluster.leader.Store(false)
	var tr TokensResponse
	if code := tc.adminCall(t, http.MethodGet, PathTokens, nil, tc.admin, &tr); code != http.StatusServiceUnavailable {
		t.Errorf("GET tokens on a non-leader: %d, want 503", code)
	}
	var ca CAResponse
	if code := tc.adminCall(t, http.MethodGet, PathJoinCA, nil, "", &ca); code != http.StatusOK || ca.CA != string(tc.local.CACert) {
		t.Errorf("GET %s without a nonce on a non-leader: %d", PathJoinCA, code)
	}
}
