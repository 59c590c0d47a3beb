package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/shoal-dev/shoal/api"
)

// Errors returned by the package, matched with errors.Is.
var (
	// ErrNotFound is what a Source wraps when the ConfigMap or Secret does
	// not exist, e.g. fmt.Errorf("%w: %w", volume.ErrNotFound, storeErr).
	ErrNotFound = errors.New("not found")
	// ErrMissingSource: a ConfigMap or Secret (or one of its keys) that a
	// volume needs, and that is not optional, does not exist. The message
	// names the object; the node loop shows it as the pod's waiting reason.
	ErrMissingSource = errors.New("missing volume source")
	// ErrInvalidPath: an item path or a subPath is absolute, contains "..",
	// or resolves outside its volume. The message names the field.
	ErrInvalidPath = errors.New("invalid path")
	// ErrHostPath: a hostPath volume does not match its type.
	ErrHostPath = errors.New("hostPath check failed")
)

// Config says where volumes live.
type Config struct {
	// Root holds one directory per pod, removed by Teardown.
	Root string
	// LocalRoot holds node-local volumes for StatefulSet claims, which
	// outlive their pods. It must not be inside Root, nor Root inside it.
	LocalRoot string
	// UseTmpfs puts secrets and emptyDir volumes with medium Memory on
	// tmpfs (needs root). True in production; tests that are not root turn
	// it off, and then secrets are written to disk.
	UseTmpfs bool
}

// DefaultConfig is the production configuration.
func DefaultConfig() Config {
	return Config{Root: "/var/lib/shoal/pods", LocalRoot: "/var/lib/shoal/local", UseTmpfs: true}
}

// Validate checks that both roots are absolute and disjoint.
func (c Config) Validate() error {
	if !filepath.IsAbs(c.Root) || !filepath.IsAbs(c.LocalRoot) {
		return fmt.Errorf("volume: Root %q and LocalRoot %q must be absolute paths", c.Root, c.LocalRoot)
	}
	r, l := filepath.Clean(c.Root), filepath.Clean(c.LocalRoot)
	if within(r, l) || within(l, r) {
		return fmt.Errorf("volume: Root %q and LocalRoot %q must not contain one another", c.Root, c.LocalRoot)
	}
	return nil
}

// Source gives the ConfigMaps and Secrets that volumes read. A missing
// object returns an error wrapping ErrNotFound.
type Source interface {
	ConfigMap(ns, name string) (*api.ConfigMap, error)
	Secret(ns, name string) (*api.Secret, error)
}

// Mount is one bind mount the runtime makes into a container.
type Mount struct {
	Source, Destination string
	ReadOnly            bool
}

// Manager prepares and removes pod volumes. It is safe for concurrent use
// (operations are serialised).
type Manager struct {
	cfg Config
	mu  sync.Mutex
}

// New returns a Manager, creating both roots.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, p := range []*string{&cfg.Root, &cfg.LocalRoot} {
		if err := os.MkdirAll(*p, 0o755); err != nil {
			return nil, fmt.Errorf("volume: %w", err)
		}
		// Canonical paths, so that mount points compare with mountinfo.
		real, err := filepath.EvalSymlinks(*p)
		if err != nil {
			return nil, fmt.Errorf("volume: %w", err)
		}
		*p = real
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg}, nil
}

// Directory names under <Root>/<uid>/volumes.
const (
	dirEmptyDir  = "empty-dir"
	dirConfigMap = "config-map"
	dirSecret    = "secret"
)

func (m *Manager) podDir(uid string) string { return filepath.Join(m.cfg.Root, uid) }

func (m *Manager) volDir(uid, kind, name string) string {
	return filepath.Join(m.cfg.Root, uid, "volumes", kind, name)
}

// Setup makes every volume of pod ready. It is idempotent: a volume already
// set up is left as it is (Refresh updates configMap and secret contents).
// It goes through all volumes and returns their errors joined; a missing
// ConfigMap or Secret wraps ErrMissingSource.
func (m *Manager) Setup(pod *api.Pod, src Source) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkPod(pod); err != nil {
		return err
	}
	var errs []error
	for i := range pod.Spec.Volumes {
		if _, err := m.ensure(pod, i, src); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Prepare sets up the volumes container c mounts (as Setup does) and
// returns the bind mounts for its volumeMounts, resolving subPaths inside
// their volumes. ConfigMap and Secret volumes are always read-only.
func (m *Manager) Prepare(pod *api.Pod, c api.Container, src Source) ([]Mount, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkPod(pod); err != nil {
		return nil, err
	}
	index := map[string]int{}
	for i, v := range pod.Spec.Volumes {
		index[v.Name] = i
	}
	var mounts []Mount
	for i, vm := range c.VolumeMounts {
		field := fmt.Sprintf("container %q volumeMounts[%d]", c.Name, i)
		vi, ok := index[vm.Name]
		if !ok {
			return nil, fmt.Errorf("%s.name: pod has no volume %q", field, vm.Name)
		}
		vol := &pod.Spec.Volumes[vi]
		path, err := m.ensure(pod, vi, src)
		if err != nil {
			return nil, err
		}
		readOnly := vm.ReadOnly
		writable := true // whether a missing subPath may be created
		switch {
		case vol.ConfigMap != nil, vol.Secret != nil:
			readOnly, writable = true, false
		case vol.PersistentVolumeClaim != nil && vol.PersistentVolumeClaim.ReadOnly:
			readOnly = true
		}
		if vm.SubPath != "" {
			path, err = resolveSubPath(path, vm.SubPath, field+".subPath", writable)
			if err != nil {
				return nil, err
			}
		}
		mounts = append(mounts, Mount{Source: path, Destination: vm.MountPath, ReadOnly: readOnly})
	}
	return mounts, nil
}

// Refresh rewrites the configMap and secret volumes of pod whose object
// changed, each with one atomic swap, and reports whether any changed.
// Volumes not yet set up are skipped. A non-optional object that has gone
// keeps its last contents and yields an error wrapping ErrMissingSource; an
// optional one that has gone empties its volume.
func (m *Manager) Refresh(pod *api.Pod, src Source) (changed bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkPod(pod); err != nil {
		return false, err
	}
	var errs []error
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		if vol.ConfigMap == nil && vol.Secret == nil {
			continue
		}
		dir := m.volumePath(pod, vol)
		if !populated(dir) {
			continue
		}
		c, err := m.writeObject(pod, i, dir, src)
		if err != nil {
			errs = append(errs, err)
		}
		changed = changed || c
	}
	return changed, errors.Join(errs...)
}

// Teardown unmounts every tmpfs of the pod and removes <Root>/<uid>. Local
// volumes stay. Removing a pod that has no state here succeeds.
func (m *Manager) Teardown(podUID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := checkName("pod uid", podUID); err != nil {
		return err
	}
	dir := m.podDir(podUID)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := unmountUnder(dir); err != nil {
		return fmt.Errorf("volume: teardown of pod %s: %w", podUID, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("volume: teardown of pod %s: %w", podUID, err)
	}
	return nil
}

// ListPods returns the UIDs of the pods that have state under Root, sorted,
// so that an agent that restarted can tear down those it no longer runs.
func (m *Manager) ListPods() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	entries, err := os.ReadDir(m.cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	var uids []string
	for _, e := range entries {
		if e.IsDir() {
			uids = append(uids, e.Name())
		}
	}
	sort.Strings(uids)
	return uids, nil
}

func (m *Manager) checkPod(pod *api.Pod) error {
	if pod == nil {
		return errors.New("volume: no pod")
	}
	return checkName("pod uid", pod.UID)
}

// checkName accepts a single path element.
func checkName(what, s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("volume: %s %q: %w: must be a single path element", what, s, ErrInvalidPath)
	}
	return nil
}

// volumePath is the host path of vol for pod, with no side effect.
func (m *Manager) volumePath(pod *api.Pod, vol *api.Volume) string {
	switch {
	case vol.EmptyDir != nil:
		return m.volDir(pod.UID, dirEmptyDir, vol.Name)
	case vol.ConfigMap != nil:
		return m.volDir(pod.UID, dirConfigMap, vol.Name)
	case vol.Secret != nil:
		return m.volDir(pod.UID, dirSecret, vol.Name)
	case vol.HostPath != nil:
		return filepath.Clean(vol.HostPath.Path)
	case vol.PersistentVolumeClaim != nil:
		return filepath.Join(m.cfg.LocalRoot, namespace(pod), vol.PersistentVolumeClaim.ClaimName)
	}
	return ""
}

func namespace(pod *api.Pod) string {
	if pod.Namespace == "" {
		return "default"
	}
	return pod.Namespace
}

// ensure sets up volume i of pod if it is not yet, and returns its path.
func (m *Manager) ensure(pod *api.Pod, i int, src Source) (string, error) {
	vol := &pod.Spec.Volumes[i]
	field := fmt.Sprintf("spec.volumes[%d]", i)
	if err := checkName(field+".name", vol.Name); err != nil {
		return "", err
	}
	dir := m.volumePath(pod, vol)
	switch {
	case vol.EmptyDir != nil:
		return dir, m.ensureEmptyDir(dir, vol.EmptyDir, field)
	case vol.HostPath != nil:
		return dir, checkHostPath(field+".hostPath", vol.HostPath)
	case vol.PersistentVolumeClaim != nil:
		if err := checkName("namespace", namespace(pod)); err != nil {
			return "", err
		}
		if err := checkName(field+".persistentVolumeClaim.claimName", vol.PersistentVolumeClaim.ClaimName); err != nil {
			return "", err
		}
		return dir, mkdirMode(dir, 0o777)
	case vol.ConfigMap != nil, vol.Secret != nil:
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		if vol.Secret != nil && m.cfg.UseTmpfs {
			if err := ensureTmpfs(dir, "mode=0755"); err != nil {
				return "", fmt.Errorf("%s.secret: %w", field, err)
			}
		}
		if populated(dir) {
			return dir, nil
		}
		_, err := m.writeObject(pod, i, dir, src)
		return dir, err
	}
	return "", fmt.Errorf("%s: no supported volume source", field)
}

func (m *Manager) ensureEmptyDir(dir string, ed *api.EmptyDirVolumeSource, field string) error {
	if err := mkdirMode(dir, 0o777); err != nil {
		return fmt.Errorf("%s.emptyDir: %w", field, err)
	}
	if ed.Medium != "Memory" || !m.cfg.UseTmpfs {
		return nil
	}
	opts := "mode=0777"
	if ed.SizeLimit != nil {
		n, err := ed.SizeLimit.Value()
		if err != nil {
			return fmt.Errorf("%s.emptyDir.sizeLimit: %w", field, err)
		}
		if n > 0 {
			opts += fmt.Sprintf(",size=%d", n)
		}
	}
	if err := ensureTmpfs(dir, opts); err != nil {
		return fmt.Errorf("%s.emptyDir: %w", field, err)
	}
	return nil
}

// mkdirMode creates dir (and its parents) and gives it mode, whatever the
// umask.
func mkdirMode(dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	return os.Chmod(dir, mode)
}

// ensureTmpfs mounts a tmpfs at dir unless one is mounted there already.
func ensureTmpfs(dir, opts string) error {
	ok, err := isMountPoint(dir)
	if err != nil || ok {
		return err
	}
	return mountTmpfs(dir, opts)
}

// writeObject fetches the ConfigMap or Secret of volume i and writes it
// into dir atomically.
func (m *Manager) writeObject(pod *api.Pod, i int, dir string, src Source) (bool, error) {
	vol := &pod.Spec.Volumes[i]
	field := fmt.Sprintf("spec.volumes[%d]", i)
	ns := namespace(pod)
	var (
		data     map[string][]byte
		items    []api.KeyToPath
		mode     *int32
		optional bool
		what     string
		err      error
	)
	if s := vol.ConfigMap; s != nil {
		field += ".configMap"
		items, mode, optional = s.Items, s.DefaultMode, s.Optional != nil && *s.Optional
		what = fmt.Sprintf("configMap %s/%s", ns, s.Name)
		var cm *api.ConfigMap
		if cm, err = src.ConfigMap(ns, s.Name); err == nil {
			data = configMapData(cm)
		}
	} else {
		s := vol.Secret
		field += ".secret"
		items, mode, optional = s.Items, s.DefaultMode, s.Optional != nil && *s.Optional
		what = fmt.Sprintf("secret %s/%s", ns, s.SecretName)
		if m.cfg.UseTmpfs {
			if ok, merr := isMountPoint(dir); merr != nil || !ok {
				return false, fmt.Errorf("%s: %s not written: no tmpfs at %s (%v)", field, what, dir, merr)
			}
		}
		var sec *api.Secret
		if sec, err = src.Secret(ns, s.SecretName); err == nil {
			data = secretData(sec)
		}
	}
	switch {
	case errors.Is(err, ErrNotFound) && optional:
		data = nil // an optional object that does not exist: an empty volume
	case errors.Is(err, ErrNotFound):
		return false, fmt.Errorf("%s: %w: %s not found", field, ErrMissingSource, what)
	case err != nil:
		return false, fmt.Errorf("%s: reading %s: %w", field, what, err)
	}
	p, err := buildPayload(field, what, data, items, mode, optional)
	if err != nil {
		return false, err
	}
	changed, err := writeAtomic(dir, p)
	if err != nil {
		return false, fmt.Errorf("%s: writing %s: %w", field, what, err)
	}
	return changed, nil
}

func configMapData(cm *api.ConfigMap) map[string][]byte {
	d := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		d[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		d[k] = v
	}
	return d
}

func secretData(s *api.Secret) map[string][]byte {
	d := make(map[string][]byte, len(s.Data)+len(s.StringData))
	for k, v := range s.Data {
		d[k] = v
	}
	for k, v := range s.StringData {
		d[k] = []byte(v)
	}
	return d
}

// within says whether p is dir or below it (both clean).
func within(dir, p string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator)) || dir == "/"
}
