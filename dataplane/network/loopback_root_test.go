package network

import (
	"context"
	"path/filepath"
	"testing"
)

// TestLoopbackRoot: Setup brings the pod's lo up without the CNI loopback
// plugin (no libcni cache entry for it), and Teardown still clears the
// entry of a pod an older agent set up with the plugin.
func TestLoopbackRoot(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	dir := t.TempDir()
	host := newHostNS(t, dir, "host")
	n := newTestNetwork(t, host, filepath.Join(dir, "state"), "10.244.5.0/24")
	ctx := context.Background()

	p := PodRef{Namespace: "default", Name: "lo-new", UID: "uid-lo-new"}
	pn, err := n.Setup(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := dialFrom(pn.NetNSPath, serveOnce(t, pn.NetNSPath, "127.0.0.1:0")); err != nil || got != "hello 127.0.0.1" {
		t.Fatalf("loopback in pod: %q, %v", got, err)
	}
	key, _ := p.key()
	if cached, _, err := n.cni.GetNetworkListCachedConfig(n.lo, runtimeConf(p, key, pn.NetNSPath, "lo")); err != nil || cached != nil {
		t.Fatalf("libcni has a loopback entry for a new pod (%s, %v): the plugin ran", cached, err)
	}
	if err := n.Teardown(ctx, p); err != nil {
		t.Fatal(err)
	}

	// A pod set up the old way: the loopback plugin ran and left its entry.
	old := PodRef{Namespace: "default", Name: "lo-old", UID: "uid-lo-old"}
	opn, err := n.Setup(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	okey, _ := old.key()
	conf := runtimeConf(old, okey, opn.NetNSPath, "lo")
	if err := inNetNS(host, func() error { _, err := n.cni.AddNetworkList(ctx, n.lo, conf); return err }); err != nil {
		t.Fatal(err)
	}
	if cached, _, err := n.cni.GetNetworkListCachedConfig(n.lo, conf); err != nil || cached == nil {
		t.Fatalf("no loopback entry after the plugin's ADD: %v", err)
	}
	if err := n.Teardown(ctx, old); err != nil {
		t.Fatal(err)
	}
	if cached, _, err := n.cni.GetNetworkListCachedConfig(n.lo, conf); err != nil || cached != nil {
		t.Fatalf("Teardown left the old pod's loopback entry (%s, %v)", cached, err)
	}
}
