package identity

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/consensus/pki"
)

// fuzzServer is a server over a bootstrapped record, whose renewal
// requests come from node n2 (a voter).
func fuzzServer(f *testing.F) (*Server, pki.JoinToken, []byte) {
	local, rec, _, err := Bootstrap("fuzz", nil, "boot", nil, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	cl := newFakeCluster(rec, local.KEK)
	s, err := NewServer(ServerConfig{
		Cluster: cl, Logger: discardLogger(), FailureLimit: 1 << 30,
		PeerOf: func(*http.Request) (pki.Peer, bool) {
			return pki.Peer{Node: "n2", Role: pki.RoleVoter, NotBefore: time.Now()}, true
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	o, err := rec.Open(local.KEK)
	if err != nil {
		f.Fatal(err)
	}
	voter, _ := o.Tokens()
	key, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, "n2", testIPs)
	return s, voter, csr
}

// checkAnswer fails on an answer the handlers must never give.
func checkAnswer(t *testing.T, w *httptest.ResponseRecorder) {
	switch w.Code {
	case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge:
	default:
		t.Fatalf("answer %d: %s", w.Code, w.Body)
	}
	if w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d without a JSON content type", w.Code)
	}
}

func FuzzJoinBody(f *testing.F) {
	s, voter, csr := fuzzServer(f)
	f.Add([]byte(mustJSON(JoinRequest{Token: voter.String(), Node: "n2", CSR: string(csr), IPs: []string{"127.0.0.1"}})))
	f.Add([]byte(mustJSON(JoinRequest{Token: "SHOAL-1-" + voter.Secret, Node: "n2", CSR: string(csr)})))
	f.Add([]byte(`{"token":"","node":"","csr":"","ips":null}`))
	f.Add([]byte(`{"ips":["::1","x"]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, PathJoin, bytes.NewReader(body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		checkAnswer(t, w)
	})
}

func FuzzCertificateBody(f *testing.F) {
	s, _, csr := fuzzServer(f)
	f.Add([]byte(mustJSON(CertificateRequest{Node: "n2", CSR: string(csr), IPs: []string{"127.0.0.1"}})))
	f.Add([]byte(mustJSON(CertificateRequest{Node: "n3", CSR: string(csr)})))
	f.Add([]byte(`{"node":"n2","csr":"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}`))
	f.Add([]byte(`{"node":"n2"} {}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, PathCertificate, bytes.NewReader(body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		checkAnswer(t, w)
	})
}
