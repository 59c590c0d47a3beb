package api

import (
	"errors"
	"fmt"
	pathpkg "path"
	"strings"
)

// hostPath volumes: a pod may mount a directory of its node only below an
// entry of the agents' allowlist (--host-path-allow, empty by default, so
// that every hostPath is refused), and never one of ReservedHostPaths.

// ReservedHostPaths are never mounted into a pod, whatever the allowlist
// says: the host's configuration, Shoal's own state, the container
// runtime's socket and the kernel's file systems. A hostPath that is one of
// them, lies below one, or contains one (such as "/" or "/var") is refused;
// "/" itself is refused because it contains them all.
// An agent adds its data directory and containerd socket when it checks its
// allowlist (CheckHostPathAllow).
var ReservedHostPaths = []string{"/dev", "/etc", "/proc", "/run/containerd", "/sys", "/var/lib/shoal"}

// ErrHostPathNotAllowed is wrapped by the errors of CheckHostPath.
var ErrHostPathNotAllowed = errors.New("hostPath not allowed")

// CleanHostPath returns p cleaned when it is an absolute path without "."
// or ".." elements (trailing slashes and repeated slashes are fine).
func CleanHostPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("must not be empty")
	}
	if !strings.HasPrefix(p, "/") {
		return "", errors.New("must be an absolute path")
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." || el == "." {
			return "", fmt.Errorf("must not contain %q", el)
		}
	}
	if strings.ContainsRune(p, 0) {
		return "", errors.New("must not contain a NUL byte")
	}
	return pathpkg.Clean(p), nil
}

// pathWithin reports whether p is dir or lies below it; both are clean and
// absolute.
func pathWithin(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// overlapsReserved says why p may not be mounted or allowed: it is, lies
// below or contains an entry of reserved; "" when it does not.
func overlapsReserved(p string, reserved []string) string {
	if p == "/" {
		return "/ (the host's root) is never mounted into a pod"
	}
	for _, r := range reserved {
		switch {
		case pathWithin(p, r):
			return r + " is reserved to the host and never mounted into a pod"
		case pathWithin(r, p):
			return "it contains " + r + ", which is reserved to the host and never mounted into a pod"
		}
	}
	return ""
}

// CheckHostPath says whether a pod may mount the host path p given the
// allowlist allow: p must be absolute without "." or ".." elements, must
// not be, lie below or contain a ReservedHostPaths entry, and once cleaned
// must be an entry of allow or lie below one ("/data" allows "/data" and
// "/data/x", not "/data2"). Errors wrap ErrHostPathNotAllowed and do not
// repeat p.
func CheckHostPath(p string, allow []string) error {
	clean, err := CleanHostPath(p)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrHostPathNotAllowed, err)
	}
	if why := overlapsReserved(clean, ReservedHostPaths); why != "" {
		return fmt.Errorf("%w: %s", ErrHostPathNotAllowed, why)
	}
	for _, a := range allow {
		ca, err := CleanHostPath(a)
		if err == nil && pathWithin(clean, ca) {
			return nil
		}
	}
	if len(allow) == 0 {
		return fmt.Errorf("%w: no host path is allowed on this cluster (the agents' --host-path-allow is empty)", ErrHostPathNotAllowed)
	}
	return fmt.Errorf("%w: not below an allowed directory (--host-path-allow %s)", ErrHostPathNotAllowed, strings.Join(allow, ","))
}

// CheckHostPathAllow checks an allowlist as an agent is given it: every
// entry is an absolute path without "." or ".." elements, and none is,
// lies below or contains a ReservedHostPaths entry or one of extra (the
// agent's data directory and containerd socket, say). Errors name the
// flag --host-path-allow.
func CheckHostPathAllow(allow []string, extra ...string) error {
	reserved := append([]string(nil), ReservedHostPaths...)
	for _, e := range extra {
		if c, err := CleanHostPath(e); err == nil {
			reserved = append(reserved, c)
		}
	}
	for _, a := range allow {
		c, err := CleanHostPath(a)
		if err != nil {
			return fmt.Errorf("host-path-allow: %q %v", a, err)
		}
		if why := overlapsReserved(c, reserved); why != "" {
			return fmt.Errorf("host-path-allow: %q: %s", a, why)
		}
	}
	return nil
}

// ValidateHostPaths checks every hostPath volume of obj (a Pod, or the pod
// template of a ReplicaSet, Deployment, DaemonSet or StatefulSet) with
// CheckHostPath against allow. The errors name the path field, e.g.
// spec.template.spec.volumes[0].hostPath.path. Other kinds pass.
func ValidateHostPaths(obj Object, allow []string) FieldErrors {
	var spec *PodSpec
	p := path("spec")
	switch o := obj.(type) {
	case *Pod:
		spec = &o.Spec
	case *ReplicaSet:
		spec, p = &o.Spec.Template.Spec, p.child("template").child("spec")
	case *Deployment:
		spec, p = &o.Spec.Template.Spec, p.child("template").child("spec")
	case *DaemonSet:
		spec, p = &o.Spec.Template.Spec, p.child("template").child("spec")
	case *StatefulSet:
		spec, p = &o.Spec.Template.Spec, p.child("template").child("spec")
	default:
		return nil
	}
	var errs FieldErrors
	for i, vol := range spec.Volumes {
		if vol.HostPath == nil {
			continue
		}
		if err := CheckHostPath(vol.HostPath.Path, allow); err != nil {
			fp := p.child("volumes").index(i).child("hostPath").child("path")
			errs = append(errs, Invalid(fp.String(), vol.HostPath.Path, strings.TrimPrefix(err.Error(), ErrHostPathNotAllowed.Error()+": ")))
		}
	}
	return errs.Sorted()
}
