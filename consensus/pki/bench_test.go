package pki

import (
	"testing"
	"time"
)

// BenchmarkVerifyToken is the per-request cost of API authentication.
func BenchmarkVerifyToken(b *testing.B) {
	ca := mustCA(b, "bench", t0)
	tok := mustSign(b, ca, testClaims())
	now := t0.Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyToken(ca.Cert, tok, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandshake is one full mutual TLS 1.3 handshake (ServerConfig
// requiring a client certificate, ClientConfig) over net.Pipe: the cost of a
// new agent-to-agent connection.
func BenchmarkHandshake(b *testing.B) {
	ca := mustCA(b, "bench", time.Now())
	srv := mustHolder(b, ca, "s", RoleVoter).ServerConfig(true)
	cli := mustHolder(b, ca, "c", RoleWorker).ClientConfig()
	b.ReportAllocs()
	for b.Loop() {
		if r := handshake(b, srv, cli); !r.ok() {
			b.Fatalf("handshake: %v / %v", r.serverErr, r.clientErr)
		}
	}
}

// BenchmarkRaftHandshake is the same with RaftConfig on both ends.
func BenchmarkRaftHandshake(b *testing.B) {
	ca := mustCA(b, "bench", time.Now())
	srv := mustHolder(b, ca, "s", RoleVoter).RaftConfig()
	cli := mustHolder(b, ca, "c", RoleVoter).RaftConfig()
	b.ReportAllocs()
	for b.Loop() {
		if r := handshake(b, srv, cli); !r.ok() {
			b.Fatalf("handshake: %v / %v", r.serverErr, r.clientErr)
		}
	}
}

// BenchmarkVerifierCached is the per-request cost when the token was seen
// before.
func BenchmarkVerifierCached(b *testing.B) {
	ca := mustCA(b, "bench", t0)
	tok := mustSign(b, ca, testClaims())
	v, err := NewVerifier(ca.Cert, 1024)
	if err != nil {
		b.Fatal(err)
	}
	now := t0.Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, now); err != nil {
			b.Fatal(err)
		}
	}
}
