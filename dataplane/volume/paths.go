package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

// resolveSubPath returns the host path of sub inside the volume at base,
// with symlinks resolved, after checking that it stays inside the volume.
// Missing directories are created when create is set (writable volumes, as
// Kubernetes does); otherwise a missing subPath is an error.
//
// The check is made when the mount is prepared; a container that swaps a
// directory of its volume for a symlink between this check and the bind
// mount is not defended against (Kubernetes pins the path with
// file descriptors; we do not, yet).
func resolveSubPath(base, sub, field string, create bool) (string, error) {
	if err := checkRelPath(field, sub); err != nil {
		return "", err
	}
	if filepath.Clean(sub) == "." {
		return "", fmt.Errorf("%s: %w: %q names the volume itself", field, ErrInvalidPath, sub)
	}
	root, err := filepath.EvalSymlinks(base)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	cur := root
	for _, part := range strings.Split(filepath.Clean(sub), "/") {
		next := filepath.Join(cur, part)
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, os.ErrNotExist) && create:
			if err := os.Mkdir(next, 0o777); err != nil && !errors.Is(err, os.ErrExist) {
				return "", fmt.Errorf("%s: %w", field, err)
			}
			if err := os.Chmod(next, 0o777); err != nil {
				return "", fmt.Errorf("%s: %w", field, err)
			}
		case errors.Is(err, os.ErrNotExist):
			return "", fmt.Errorf("%s: %q does not exist in the volume", field, sub)
		case err != nil:
			return "", fmt.Errorf("%s: %w", field, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			real, err := filepath.EvalSymlinks(next)
			if err != nil {
				return "", fmt.Errorf("%s: %w: %q: %v", field, ErrInvalidPath, sub, err)
			}
			if !within(root, real) {
				return "", fmt.Errorf("%s: %w: %q resolves outside the volume", field, ErrInvalidPath, sub)
			}
			next = real
		}
		cur = next
	}
	return cur, nil
}

// checkHostPath checks (or creates) a hostPath volume according to its type.
func checkHostPath(field string, hp *api.HostPathVolumeSource) error {
	path := hp.Path
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s.path: %w: %q must be absolute", field, ErrInvalidPath, path)
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s: %w: %s %s", field, ErrHostPath, path, fmt.Sprintf(format, a...))
	}
	switch hp.Type {
	case "":
		return nil
	case "DirectoryOrCreate":
		if err := os.MkdirAll(path, 0o755); err != nil {
			return fail("could not be created: %v", err)
		}
	case "FileOrCreate":
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return fail("could not be created: %v", err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
			if err != nil {
				return fail("could not be created: %v", err)
			}
			f.Close()
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fail("does not exist (type %s)", hp.Type)
	}
	m := fi.Mode()
	var ok bool
	switch hp.Type {
	case "Directory", "DirectoryOrCreate":
		ok = m.IsDir()
	case "File", "FileOrCreate":
		ok = m.IsRegular()
	case "Socket":
		ok = m&fs.ModeSocket != 0
	case "CharDevice":
		ok = m&fs.ModeCharDevice != 0
	case "BlockDevice":
		ok = m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0
	default:
		return fmt.Errorf("%s.type: %w: unsupported type %q", field, ErrHostPath, hp.Type)
	}
	if !ok {
		return fail("is not a %s (it is a %s)", hp.Type, kindOf(m))
	}
	return nil
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}
