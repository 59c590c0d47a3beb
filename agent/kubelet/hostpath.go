package kubelet

import (
	"fmt"
	"path/filepath"

	"github.com/shoal-dev/shoal/api"
)

// The node's own check of hostPath volumes (defence in depth behind the
// API's): a pod written before the allowlist changed, or through an agent
// with another allowlist, is not given a host directory outside this
// agent's Config.HostPathAllow. The pod waits with reason
// CreateContainerConfigError and a message naming the volume; other pods
// are not affected.

// checkHostPaths returns an error naming the first hostPath volume of pod
// that this node may not mount: one CheckHostPath refuses, or one that
// resolves, through symbolic links on this host, to a place outside the
// (likewise resolved) allowlist, such as a link to /etc planted below an
// allowed directory by another pod.
func checkHostPaths(pod *api.Pod, allow []string) error {
	var resolved []string
	for i, v := range pod.Spec.Volumes {
		if v.HostPath == nil {
			continue
		}
		field := fmt.Sprintf("spec.volumes[%d].hostPath.path", i)
		if err := api.CheckHostPath(v.HostPath.Path, allow); err != nil {
			return fmt.Errorf("%s: %q: %w on this node", field, v.HostPath.Path, err)
		}
		clean := filepath.Clean(v.HostPath.Path)
		real := resolveExisting(clean)
		if real == clean {
			continue
		}
		if resolved == nil {
			resolved = append(resolved, allow...)
			for _, a := range allow {
				resolved = append(resolved, resolveExisting(filepath.Clean(a)))
			}
		}
		if err := api.CheckHostPath(real, resolved); err != nil {
			return fmt.Errorf("%s: %q resolves to %q: %w on this node", field, v.HostPath.Path, real, err)
		}
	}
	return nil
}

// resolveExisting resolves the symbolic links of the longest existing
// prefix of the clean absolute path p and appends the rest (which does
// not exist yet, so holds no link).
func resolveExisting(p string) string {
	for dir := p; ; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			rest, err := filepath.Rel(dir, p)
			if err != nil {
				return p
			}
			return filepath.Join(real, rest)
		}
		if dir == "/" || dir == "." {
			return p
		}
	}
}
