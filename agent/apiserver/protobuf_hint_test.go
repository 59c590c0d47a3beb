package apiserver

import (
	"net/http"
	"strings"
	"testing"
)

// TestProtobufRefusalHint: a body in Kubernetes' protobuf encoding (what
// kubectl create deployment sends) is refused with 415, and the message
// tells the kubectl user the way that works; other unsupported types get
// no such hint.
func TestProtobufRefusalHint(t *testing.T) {
	e := newEnv(t)
	r := e.request(http.MethodPost, "/apis/apps/v1/namespaces/default/deployments", "application/vnd.kubernetes.protobuf", "k8s\x00")
	if r.code != http.StatusUnsupportedMediaType || !strings.Contains(string(r.body), "--dry-run=client -o yaml") {
		t.Errorf("protobuf: HTTP %d %s, want 415 with the kubectl hint", r.code, r.body)
	}
	r = e.request(http.MethodPost, "/api/v1/namespaces/default/configmaps", "text/plain", "x")
	if r.code != http.StatusUnsupportedMediaType || strings.Contains(string(r.body), "kubectl") {
		t.Errorf("text/plain: HTTP %d %s, want 415 without the hint", r.code, r.body)
	}
}
