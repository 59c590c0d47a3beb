package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// dataLink is the symlink that names the current set of files.
const dataLink = "..data"

// defaultFileMode is the mode of configMap and secret files without
// defaultMode or an item mode, as in Kubernetes.
const defaultFileMode = 0o644

type file struct {
	data []byte
	mode os.FileMode
}

// payload maps clean relative paths to the files a volume holds.
type payload map[string]file

// buildPayload turns an object's data into files: every key when items is
// empty, else the listed keys at their paths. A listed key that the object
// lacks is an error wrapping ErrMissingSource unless optional.
func buildPayload(field, what string, data map[string][]byte, items []api.KeyToPath, defaultMode *int32, optional bool) (payload, error) {
	mode := os.FileMode(defaultFileMode)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode) & os.ModePerm
	}
	p := payload{}
	if len(items) == 0 {
		for k, v := range data {
			if err := checkPayloadPath(fmt.Sprintf("%s: key %q of %s", field, k, what), k); err != nil {
				return nil, err
			}
			p[k] = file{v, mode}
		}
	} else {
		for i, it := range items {
			f := fmt.Sprintf("%s.items[%d]", field, i)
			if err := checkPayloadPath(f+".path", it.Path); err != nil {
				return nil, err
			}
			v, ok := data[it.Key]
			if !ok {
				if optional {
					continue
				}
				return nil, fmt.Errorf("%s.key: %w: %s has no key %q", f, ErrMissingSource, what, it.Key)
			}
			path := filepath.Clean(it.Path)
			if _, dup := p[path]; dup {
				return nil, fmt.Errorf("%s.path: %w: %q is used twice", f, ErrInvalidPath, it.Path)
			}
			fm := mode
			if it.Mode != nil {
				fm = os.FileMode(*it.Mode) & os.ModePerm
			}
			p[path] = file{v, fm}
		}
	}
	// A file may not also be a directory of another file ("a" and "a/b").
	for path := range p {
		for d := filepath.Dir(path); d != "."; d = filepath.Dir(d) {
			if _, clash := p[d]; clash {
				return nil, fmt.Errorf("%s: %w: %q is both a file and the directory of %q", field, ErrInvalidPath, d, path)
			}
		}
	}
	return p, nil
}

// checkPayloadPath accepts a relative path that stays inside its volume and
// does not use the names the atomic writer reserves (a first element that
// starts with "..").
func checkPayloadPath(field, p string) error {
	if err := checkRelPath(field, p); err != nil {
		return err
	}
	if c := filepath.Clean(p); c == "." || strings.HasPrefix(c, "..") {
		return fmt.Errorf("%s: %w: %q must name a file and not start with '..'", field, ErrInvalidPath, p)
	}
	return nil
}

// checkRelPath accepts a relative path without "..": it cannot leave its
// volume by itself (symlinks are checked where the path is resolved).
func checkRelPath(field, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s: %w: must not be empty", field, ErrInvalidPath)
	case filepath.IsAbs(p):
		return fmt.Errorf("%s: %w: %q must be a relative path", field, ErrInvalidPath, p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%s: %w: %q contains a NUL byte", field, ErrInvalidPath, p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return fmt.Errorf("%s: %w: %q must not contain '..'", field, ErrInvalidPath, p)
		}
	}
	return nil
}

// populated says whether dir holds a written set of files.
func populated(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, dataLink))
	return err == nil
}

// readCurrent returns the files ..data points to; ok is false when there is
// no ..data yet.
func readCurrent(dir string) (p payload, ok bool, err error) {
	target, err := os.Readlink(filepath.Join(dir, dataLink))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	root := filepath.Join(dir, target)
	p = payload{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		p[rel] = file{b, info.Mode().Perm()}
		return nil
	})
	return p, true, err
}

func (p payload) equal(q payload) bool {
	if len(p) != len(q) {
		return false
	}
	for k, f := range p {
		g, ok := q[k]
		if !ok || f.mode != g.mode || !bytes.Equal(f.data, g.data) {
			return false
		}
	}
	return true
}

// topLevel returns the first elements of the payload's paths.
func (p payload) topLevel() map[string]bool {
	t := map[string]bool{}
	for path := range p {
		t[strings.SplitN(path, "/", 2)[0]] = true
	}
	return t
}

// writeAtomic makes dir hold exactly p, unless it does already. The files
// are written into a new directory "..<timestamp>" which ..data is then
// renamed to point at; top-level symlinks "<name> -> ..data/<name>" are
// added for new names and removed for names that went away; old directories
// are removed last. A reader that resolves ..data once sees either the old
// or the new set, complete.
func writeAtomic(dir string, p payload) (bool, error) {
	old, had, err := readCurrent(dir)
	if err != nil {
		return false, err
	}
	if had && old.equal(p) {
		return false, nil
	}
	// The timestamp only names the directory; MkdirTemp makes it unique.
	ts, err := os.MkdirTemp(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		return false, err
	}
	if err := writeFiles(ts, p); err != nil {
		os.RemoveAll(ts)
		return false, err
	}
	if err := replaceSymlink(filepath.Join(dir, dataLink), filepath.Base(ts)); err != nil {
		os.RemoveAll(ts)
		return false, err
	}
	top := p.topLevel()
	names := make([]string, 0, len(top))
	for name := range top {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		link := filepath.Join(dir, name)
		want := filepath.Join(dataLink, name)
		if cur, err := os.Readlink(link); err == nil && cur == want {
			continue
		}
		if err := replaceSymlink(link, want); err != nil {
			return true, err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true, err
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == dataLink || name == filepath.Base(ts):
		case strings.HasPrefix(name, ".."):
			// An older set of files, or a leftover of an interrupted write.
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return true, err
			}
		case !top[name] && e.Type()&fs.ModeSymlink != 0:
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

func writeFiles(root string, p payload) error {
	for path, f := range p {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		fh, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return err
		}
		_, err = fh.Write(f.data)
		if err == nil {
			err = fh.Chmod(f.mode) // whatever the umask
		}
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// replaceSymlink points link at target with one rename, so that the link
// never goes missing.
func replaceSymlink(link, target string) error {
	tmp := filepath.Join(filepath.Dir(link), "..tmp_"+filepath.Base(link))
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
