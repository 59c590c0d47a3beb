package apiserver

import (
	"net/http"
	"testing"
)

// TestForwardDiscoveryIsLocal: every agent answers the discovery documents
// itself, even without a leader, while resource reads still need one.
func TestForwardDiscoveryIsLocal(t *testing.T) {
	a := newFwdAgent(t, "voter", true, &fakeRoute{local: true}) // no leader known
	for _, p := range []string{"/api", "/apis", "/api/v1", "/apis/apps", "/apis/apps/v1", "/openapi/v3", "/openapi/v3/apis/apps/v1", "/version"} {
		r := send(t, a, http.MethodGet, p, "", nil)
		mustCode(t, r.response, http.StatusOK)
		if r.servedBy != "voter" {
			t.Errorf("GET %s served by %q", p, r.servedBy)
		}
	}
	mustCode(t, send(t, a, http.MethodGet, "/api/v1/namespaces/default/pods", "", nil).response, http.StatusServiceUnavailable)
	// A write to a discovery path stays local too, and is refused there.
	mustCode(t, send(t, a, http.MethodPost, "/apis/apps/v1", "{}", nil).response, http.StatusMethodNotAllowed)
}
