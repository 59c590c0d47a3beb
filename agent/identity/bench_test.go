package identity

import (
	"context"
	"testing"
	"time"
)

// BenchmarkJoin is one pinned-token join over loopback TLS: key and CSR,
// GET /v1/join/ca, POST /v1/join (two handshakes, one signature).
func BenchmarkJoin(b *testing.B) {
	tc := newTestCluster(b, clusterOpts{})
	voter, _ := tc.tokens(b)
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := Join(ctx, []string{tc.addr}, voter, "n2", testIPs); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}
