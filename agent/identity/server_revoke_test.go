package identity

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestRevokeThroughTheEndpoint: an admin revokes a node; its certificates
// count as revoked in the record and it cannot renew; bad names and
// non-admin tokens are refused without changing the record.
func TestRevokeThroughTheEndpoint(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	a := joinAgent(t, tc, "n2", false)
	var ro APITokenResponse
	if code := tc.adminCall(t, http.MethodPost, PathTokensAPI, APITokenRequest{Name: "viewer", Role: RoleReadOnly, TTL: "1h"}, tc.admin, &ro); code != http.StatusOK {
		t.Fatalf("issuing a read-only token: %d", code)
	}
	for _, c := range []struct {
		body   RevokeRequest
		bearer string
		want   int
	}{
		{RevokeRequest{Node: "n2"}, "", http.StatusUnauthorized},
		{RevokeRequest{Node: "n2"}, ro.Token, http.StatusForbidden},
		{RevokeRequest{Node: "Not_A_Name"}, tc.admin, http.StatusBadRequest},
		{RevokeRequest{Node: ""}, tc.admin, http.StatusBadRequest},
	} {
		if code := tc.adminCall(t, http.MethodPost, PathRevoke, c.body, c.bearer, nil); code != c.want {
			t.Errorf("revoke %+v: %d, want %d", c.body, code, c.want)
		}
	}
	rec, _ := tc.cluster.Record(context.Background())
	if len(rec.RevokedNodes) != 0 || rec.Revoked(a.holder.Peer()) {
		t.Fatalf("refused requests changed the record: %v", rec.RevokedNodes)
	}
	var resp RevokeResponse
	if code := tc.adminCall(t, http.MethodPost, PathRevoke, RevokeRequest{Node: "n2"}, tc.admin, &resp); code != http.StatusOK {
		t.Fatalf("revoke n2: %d", code)
	}
	if resp.Node != "n2" || resp.RevokedAt.IsZero() {
		t.Errorf("answer %+v", resp)
	}
	rec, _ = tc.cluster.Record(context.Background())
	if !rec.Revoked(a.holder.Peer()) {
		t.Error("n2's certificate does not count as revoked")
	}
	if err := a.renewer(t, tc, newFakeClock(resp.RevokedAt), "").Renew(ctxTimeout(t, 30*time.Second)); err == nil {
		t.Error("a revoked node renewed its certificate")
	}
}
