package kubelet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// hostPathDirs makes <tmp>/allowed, <tmp>/secret and the link
// <tmp>/allowed/escape -> <tmp>/secret.
func hostPathDirs(t *testing.T) (allowed, secret string) {
	dir := t.TempDir()
	allowed, secret = filepath.Join(dir, "allowed"), filepath.Join(dir, "secret")
	for _, d := range []string{allowed, secret} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(secret, filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}
	return allowed, secret
}

func hostPathPod(name, uid string, paths ...string) *api.Pod {
	p := boundPod(name, uid, api.Container{Name: "app", Image: "reg/app:1"})
	for i, hp := range paths {
		p.Spec.Volumes = append(p.Spec.Volumes, api.Volume{Name: "v" + string(rune('a'+i)), HostPath: &api.HostPathVolumeSource{Path: hp}})
	}
	return p
}

func TestCheckHostPaths(t *testing.T) {
	allowed, secret := hostPathDirs(t)
	allow := []string{allowed}
	cases := []struct {
		paths []string
		why   string // "" for allowed
	}{
		{nil, ""},
		{[]string{allowed + "/x"}, ""},
		{[]string{allowed + "/x/y/"}, ""},
		{[]string{allowed}, ""},
		{[]string{"/"}, "spec.volumes[0].hostPath.path"},
		{[]string{allowed + "/x", "/etc"}, "spec.volumes[1].hostPath.path"},
		{[]string{secret}, "not below an allowed directory"},
		{[]string{allowed + "/escape"}, "resolves to"},
		{[]string{allowed + "/escape/new/dir"}, "resolves to"},
		{[]string{allowed + "/../secret"}, `".."`},
	}
	for _, tc := range cases {
		err := checkHostPaths(hostPathPod("p", "u", tc.paths...), allow)
		switch {
		case tc.why == "" && err != nil:
			t.Errorf("%q: %v, want allowed", tc.paths, err)
		case tc.why != "" && (err == nil || !strings.Contains(err.Error(), tc.why)):
			t.Errorf("%q: %v, want an error about %q", tc.paths, err, tc.why)
		}
	}
	// An allowed directory reached through a link is fine.
	link := filepath.Join(filepath.Dir(allowed), "link")
	if err := os.Symlink(allowed, link); err != nil {
		t.Fatal(err)
	}
	if err := checkHostPaths(hostPathPod("p", "u", link+"/x"), []string{link}); err != nil {
		t.Errorf("through a linked allowed directory: %v", err)
	}
}

// A pod with a hostPath outside this node's allowlist (written before the
// API refused it, or through another agent) waits with a clear reason and
// never gets its volumes or containers; the other pods run.
func TestNodeLoopRefusesHostPath(t *testing.T) {
	allowed, _ := hostPathDirs(t)
	h := newNodeHarness(t, false, func(c *Config) { c.HostPathAllow = []string{allowed} })
	bad := hostPathPod("root", "uid-root", "/")
	link := hostPathPod("link", "uid-link", allowed+"/escape")
	good := hostPathPod("good", "uid-good", allowed+"/data")
	plain := hostPathPod("plain", "uid-plain")
	h.start()
	h.pods.Replace([]*api.Pod{bad, link, good, plain})
	h.waitStatus("good", "Running", running)
	h.waitStatus("plain", "Running", running)
	for _, name := range []string{"root", "link"} {
		st := h.waitStatus(name, "CreateContainerConfigError", func(st api.PodStatus) bool {
			return waitingReason(st, 0) == ReasonCreateContainerConfigError
		})
		msg := st.ContainerStatuses[0].State.Waiting.Message
		if st.Phase != api.PodPending || !strings.Contains(msg, "spec.volumes[0].hostPath.path") || !strings.Contains(msg, "hostPath not allowed") {
			t.Errorf("%s: phase %s, message %q", name, st.Phase, msg)
		}
	}
	for _, uid := range []string{"uid-root", "uid-link"} {
		if h.vols.has(uid) {
			t.Errorf("%s: volumes set up", uid)
		}
		for _, c := range h.rt.Calls("") {
			if strings.Contains(c, uid) {
				t.Errorf("%s: runtime call %q", uid, c)
			}
		}
	}
}
