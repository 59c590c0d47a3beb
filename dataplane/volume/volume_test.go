package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// fakeSource is an in-memory Source.
type fakeSource struct {
	mu   sync.Mutex
	cms  map[string]*api.ConfigMap
	secs map[string]*api.Secret
}

func newSource() *fakeSource {
	return &fakeSource{cms: map[string]*api.ConfigMap{}, secs: map[string]*api.Secret{}}
}

func (s *fakeSource) ConfigMap(ns, name string) (*api.ConfigMap, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cm, ok := s.cms[ns+"/"+name]; ok {
		return cm, nil
	}
	return nil, fmt.Errorf("configmap %s/%s: %w", ns, name, ErrNotFound)
}

func (s *fakeSource) Secret(ns, name string) (*api.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec, ok := s.secs[ns+"/"+name]; ok {
		return sec, nil
	}
	return nil, fmt.Errorf("secret %s/%s: %w", ns, name, ErrNotFound)
}

func (s *fakeSource) setCM(name string, data map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cms["default/"+name] = &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Data: data}
}

func (s *fakeSource) setSecret(name string, data map[string][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secs["default/"+name] = &api.Secret{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Data: data}
}

// newManager returns a Manager rooted in a temporary directory. Any mount
// left under it is removed before the directory is.
func newManager(t *testing.T, tmpfs bool) (*Manager, Config) {
	t.Helper()
	base := t.TempDir()
	t.Cleanup(func() {
		if err := unmountUnder(base); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	m, err := New(Config{Root: filepath.Join(base, "pods"), LocalRoot: filepath.Join(base, "local"), UseTmpfs: tmpfs})
	if err != nil {
		t.Fatal(err)
	}
	return m, m.cfg
}

// needTmpfs skips the test unless this process may mount tmpfs.
func needTmpfs(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: mounting tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("shoal", dir, "tmpfs", 0, "size=4k"); err != nil {
		t.Skipf("skipping: cannot mount tmpfs here: %v", err)
	}
	if err := syscall.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func pod(uid string, vols ...api.Volume) *api.Pod {
	return &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: "p", Namespace: "default", UID: uid},
		Spec:       api.PodSpec{Volumes: vols},
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Root: "rel", LocalRoot: "/x"},
		{Root: "/a", LocalRoot: "/a/b"},
		{Root: "/a/b", LocalRoot: "/a"},
		{Root: "/a", LocalRoot: "/a"},
	} {
		if c.Validate() == nil {
			t.Errorf("%+v: want an error", c)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestEmptyDirAndSubPath(t *testing.T) {
	m, cfg := newManager(t, false)
	p := pod("u1", api.Volume{Name: "scratch", EmptyDir: &api.EmptyDirVolumeSource{}})
	if err := m.Setup(p, newSource()); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cfg.Root, "u1", "volumes", "empty-dir", "scratch")
	if got := mode(t, dir); got != 0o777 {
		t.Fatalf("emptyDir mode %v", got)
	}
	c := api.Container{Name: "app", VolumeMounts: []api.VolumeMount{
		{Name: "scratch", MountPath: "/data"},
		{Name: "scratch", MountPath: "/logs", SubPath: "a/logs", ReadOnly: true},
	}}
	mounts, err := m.Prepare(p, c, newSource())
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{{dir, "/data", false}, {filepath.Join(dir, "a", "logs"), "/logs", true}}
	if fmt.Sprint(mounts) != fmt.Sprint(want) {
		t.Fatalf("mounts %v, want %v", mounts, want)
	}
	if fi, err := os.Stat(filepath.Join(dir, "a", "logs")); err != nil || !fi.IsDir() {
		t.Fatalf("subPath directory not created: %v", err)
	}
	if _, err := m.Prepare(p, api.Container{Name: "x", VolumeMounts: []api.VolumeMount{{Name: "nope", MountPath: "/n"}}}, newSource()); err == nil ||
		!strings.Contains(err.Error(), `volumeMounts[0].name`) {
		t.Fatalf("unknown volume: %v", err)
	}
}

func TestEmptyDirMemoryOnTmpfs(t *testing.T) {
	needTmpfs(t)
	m, cfg := newManager(t, true)
	size := api.Quantity("1Mi")
	p := pod("u1", api.Volume{Name: "cache", EmptyDir: &api.EmptyDirVolumeSource{Medium: "Memory", SizeLimit: &size}})
	for range 2 { // idempotent: one mount, not two
		if err := m.Setup(p, newSource()); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(cfg.Root, "u1", "volumes", "empty-dir", "cache")
	line := mountLine(t, dir)
	if n := countMounts(t, dir); n != 1 || !strings.Contains(line, " - tmpfs ") || !strings.Contains(line, "size=1024k") {
		t.Fatalf("want one tmpfs of 1 MiB at %s, got %d: %q", dir, n, line)
	}
	if err := m.Teardown("u1"); err != nil {
		t.Fatal(err)
	}
	if countMounts(t, dir) != 0 {
		t.Fatal("tmpfs still mounted after Teardown")
	}
}

func mountLine(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			return l
		}
	}
	return ""
}

func countMounts(t *testing.T, dir string) int {
	t.Helper()
	mps, err := mountPoints()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mp := range mps {
		if mp == dir {
			n++
		}
	}
	return n
}

func TestHostPath(t *testing.T) {
	m, _ := newManager(t, false)
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, typ string
		ok        bool
	}{
		{base, "", true},
		{filepath.Join(base, "missing"), "", true}, // no check
		{base, "Directory", true},
		{file, "Directory", false},
		{filepath.Join(base, "missing"), "Directory", false},
		{filepath.Join(base, "new", "dir"), "DirectoryOrCreate", true},
		{file, "DirectoryOrCreate", false},
		{file, "File", true},
		{base, "File", false},
		{filepath.Join(base, "new2", "f"), "FileOrCreate", true},
		{base, "FileOrCreate", false},
		{file, "Socket", false},
		{"/dev/null", "CharDevice", true},
		{file, "Bogus", false},
		{"relative", "", false},
	} {
		p := pod("u1", api.Volume{Name: "h", HostPath: &api.HostPathVolumeSource{Path: tc.path, Type: tc.typ}})
		err := m.Setup(p, newSource())
		if (err == nil) != tc.ok {
			t.Errorf("%s %q: err %v, want ok %v", tc.path, tc.typ, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "spec.volumes[0]") {
			t.Errorf("error does not name the field: %v", err)
		}
	}
	if fi, err := os.Stat(filepath.Join(base, "new2", "f")); err != nil || !fi.Mode().IsRegular() {
		t.Fatal("FileOrCreate did not create a file")
	}
}

func TestConfigMapItemsAndModes(t *testing.T) {
	m, cfg := newManager(t, false)
	src := newSource()
	src.setCM("app", map[string]string{"a.conf": "A", "b.conf": "B", "c": "C"})
	p := pod("u1",
		api.Volume{Name: "all", ConfigMap: &api.ConfigMapVolumeSource{Name: "app", DefaultMode: ptr[int32](0o440)}},
		api.Volume{Name: "some", ConfigMap: &api.ConfigMapVolumeSource{Name: "app", Items: []api.KeyToPath{
			{Key: "a.conf", Path: "etc/app/a.conf"},
			{Key: "c", Path: "c.sh", Mode: ptr[int32](0o755)},
		}}},
	)
	if err := m.Setup(p, src); err != nil {
		t.Fatal(err)
	}
	all := filepath.Join(cfg.Root, "u1", "volumes", "config-map", "all")
	some := filepath.Join(cfg.Root, "u1", "volumes", "config-map", "some")
	if readFile(t, filepath.Join(all, "b.conf")) != "B" || mode(t, filepath.Join(all, "b.conf")) != 0o440 {
		t.Fatal("all keys with defaultMode")
	}
	if readFile(t, filepath.Join(some, "etc/app/a.conf")) != "A" || mode(t, filepath.Join(some, "etc/app/a.conf")) != 0o644 {
		t.Fatal("nested item with the default mode 0644")
	}
	if mode(t, filepath.Join(some, "c.sh")) != 0o755 {
		t.Fatal("item mode")
	}
	if _, err := os.Lstat(filepath.Join(some, "b.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a key not listed in items is not projected")
	}
	if l, err := os.Readlink(filepath.Join(some, "etc")); err != nil || l != "..data/etc" {
		t.Fatalf("top-level entries go through ..data: %q %v", l, err)
	}
	mounts, err := m.Prepare(p, api.Container{Name: "app", VolumeMounts: []api.VolumeMount{
		{Name: "all", MountPath: "/etc/all"},
		{Name: "some", MountPath: "/etc/a.conf", SubPath: "etc/app/a.conf"},
	}}, src)
	if err != nil {
		t.Fatal(err)
	}
	if !mounts[0].ReadOnly || mounts[0].Source != all || !mounts[1].ReadOnly || readFile(t, mounts[1].Source) != "A" {
		t.Fatalf("configMap mounts: %+v", mounts)
	}
	if _, err := m.Prepare(p, api.Container{Name: "app", VolumeMounts: []api.VolumeMount{
		{Name: "some", MountPath: "/x", SubPath: "nope"},
	}}, src); err == nil {
		t.Fatal("a missing subPath in a configMap volume is an error, not created")
	}
}

func TestMissingSources(t *testing.T) {
	m, cfg := newManager(t, false)
	src := newSource()
	src.setCM("has", map[string]string{"k": "v"})

	p := pod("u1", api.Volume{Name: "c", ConfigMap: &api.ConfigMapVolumeSource{Name: "gone"}},
		api.Volume{Name: "s", Secret: &api.SecretVolumeSource{SecretName: "hidden"}})
	err := m.Setup(p, src)
	if !errors.Is(err, ErrMissingSource) || !strings.Contains(err.Error(), "configMap default/gone") ||
		!strings.Contains(err.Error(), "secret default/hidden") {
		t.Fatalf("missing non-optional sources: %v", err)
	}
	if _, err := m.Prepare(p, api.Container{Name: "a", VolumeMounts: []api.VolumeMount{{Name: "c", MountPath: "/c"}}}, src); !errors.Is(err, ErrMissingSource) {
		t.Fatalf("Prepare: %v", err)
	}

	// Optional: an empty volume, no error.
	p = pod("u2", api.Volume{Name: "c", ConfigMap: &api.ConfigMapVolumeSource{Name: "gone", Optional: ptr(true)}},
		api.Volume{Name: "s", Secret: &api.SecretVolumeSource{SecretName: "hidden", Optional: ptr(true)}})
	if err := m.Setup(p, src); err != nil {
		t.Fatal(err)
	}
	if cur, ok, err := readCurrent(filepath.Join(cfg.Root, "u2", "volumes", "config-map", "c")); err != nil || !ok || len(cur) != 0 {
		t.Fatalf("optional missing: %v %v %v", cur, ok, err)
	}

	// A listed key the object lacks.
	p = pod("u3", api.Volume{Name: "c", ConfigMap: &api.ConfigMapVolumeSource{Name: "has", Items: []api.KeyToPath{{Key: "nokey", Path: "f"}}}})
	if err := m.Setup(p, src); !errors.Is(err, ErrMissingSource) || !strings.Contains(err.Error(), `items[0].key`) {
		t.Fatalf("missing key: %v", err)
	}
	p.Spec.Volumes[0].ConfigMap.Optional = ptr(true)
	if err := m.Setup(p, src); err != nil {
		t.Fatalf("missing key, optional: %v", err)
	}

	// Other Source errors are passed on, not turned into ErrMissingSource.
	p = pod("u4", api.Volume{Name: "c", ConfigMap: &api.ConfigMapVolumeSource{Name: "has"}})
	if err := m.Setup(p, brokenSource{}); err == nil || errors.Is(err, ErrMissingSource) {
		t.Fatalf("broken source: %v", err)
	}
}

type brokenSource struct{}

func (brokenSource) ConfigMap(ns, name string) (*api.ConfigMap, error) {
	return nil, errors.New("store unavailable")
}
func (brokenSource) Secret(ns, name string) (*api.Secret, error) {
	return nil, errors.New("store unavailable")
}

func TestSecretOnTmpfs(t *testing.T) {
	needTmpfs(t)
	m, cfg := newManager(t, true)
	src := newSource()
	src.setSecret("db", map[string][]byte{"password": []byte("hunter2")})
	p := pod("u1", api.Volume{Name: "creds", Secret: &api.SecretVolumeSource{SecretName: "db", DefaultMode: ptr[int32](0o400)}})
	for range 2 {
		if err := m.Setup(p, src); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(cfg.Root, "u1", "volumes", "secret", "creds")
	if line := mountLine(t, dir); !strings.Contains(line, " - tmpfs ") || countMounts(t, dir) != 1 {
		t.Fatalf("secret dir is not one tmpfs: %q", line)
	}
	if readFile(t, filepath.Join(dir, "password")) != "hunter2" || mode(t, filepath.Join(dir, "password")) != 0o400 {
		t.Fatal("secret file")
	}
	src.setSecret("db", map[string][]byte{"password": []byte("s3cret")})
	if changed, err := m.Refresh(p, src); err != nil || !changed {
		t.Fatalf("refresh: %v %v", changed, err)
	}
	if readFile(t, filepath.Join(dir, "password")) != "s3cret" {
		t.Fatal("secret not refreshed")
	}
	if err := m.Teardown("u1"); err != nil {
		t.Fatal(err)
	}
	if mountLine(t, dir) != "" {
		t.Fatal("tmpfs still mounted after Teardown")
	}
	if _, err := os.Stat(filepath.Join(cfg.Root, "u1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("pod dir still there after Teardown")
	}
}

func TestSecretWithoutTmpfs(t *testing.T) {
	m, cfg := newManager(t, false)
	src := newSource()
	src.secs["default/db"] = &api.Secret{Data: map[string][]byte{"a": []byte("1")}, StringData: map[string]string{"b": "2"}}
	p := pod("u1", api.Volume{Name: "creds", Secret: &api.SecretVolumeSource{SecretName: "db"}})
	if err := m.Setup(p, src); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cfg.Root, "u1", "volumes", "secret", "creds")
	if readFile(t, filepath.Join(dir, "a")) != "1" || readFile(t, filepath.Join(dir, "b")) != "2" {
		t.Fatal("secret data and stringData")
	}
}

func TestRefresh(t *testing.T) {
	m, cfg := newManager(t, false)
	src := newSource()
	src.setCM("app", map[string]string{"a": "1", "b": "1"})
	p := pod("u1", api.Volume{Name: "c", ConfigMap: &api.ConfigMapVolumeSource{Name: "app"}})
	if changed, err := m.Refresh(p, src); err != nil || changed {
		t.Fatalf("refresh before setup does nothing: %v %v", changed, err)
	}
	if err := m.Setup(p, src); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cfg.Root, "u1", "volumes", "config-map", "c")
	if changed, err := m.Refresh(p, src); err != nil || changed {
		t.Fatalf("unchanged object: %v %v", changed, err)
	}
	src.setCM("app", map[string]string{"a": "2", "c": "2"})
	if changed, err := m.Refresh(p, src); err != nil || !changed {
		t.Fatalf("changed object: %v %v", changed, err)
	}
	if readFile(t, filepath.Join(dir, "a")) != "2" || readFile(t, filepath.Join(dir, "c")) != "2" {
		t.Fatal("new contents")
	}
	if _, err := os.Lstat(filepath.Join(dir, "b")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a removed key's link is removed")
	}
	entries, _ := os.ReadDir(dir)
	var hidden []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			hidden = append(hidden, e.Name())
		}
	}
	if len(hidden) != 2 { // ..data and one timestamped directory
		t.Fatalf("old data directories left: %v", hidden)
	}
	// A non-optional object that went keeps its last contents.
	delete(src.cms, "default/app")
	if changed, err := m.Refresh(p, src); !errors.Is(err, ErrMissingSource) || changed {
		t.Fatalf("deleted object: %v %v", changed, err)
	}
	if readFile(t, filepath.Join(dir, "a")) != "2" {
		t.Fatal("contents kept")
	}
}

// TestAtomicUpdate checks that a reader resolving ..data once always sees a
// complete set of files from a single version while a writer keeps
// swapping versions.
func TestAtomicUpdate(t *testing.T) {
	m, cfg := newManager(t, false)
	src := newSource()
	const files = 8
	version := func(v int) map[string]string {
		d := map[string]string{}
		for i := range files {
			d[fmt.Sprintf("f%d", i)] = fmt.Sprint(v)
		}
		return d
	}
	src.setCM("app", version(0))
	p := pod("u1", api.Volume{Name: "c", ConfigMap: &api.ConfigMapVolumeSource{Name: "app"}})
	if err := m.Setup(p, src); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cfg.Root, "u1", "volumes", "config-map", "c")

	done := make(chan struct{})
	errc := make(chan error, 1)
	reads := 0
	go func() {
		defer close(errc)
		for {
			select {
			case <-done:
				return
			default:
			}
			target, err := os.Readlink(filepath.Join(dir, "..data"))
			if err != nil {
				errc <- fmt.Errorf("..data missing: %v", err)
				return
			}
			seen := map[string]bool{}
			gone := false
			for i := range files {
				b, err := os.ReadFile(filepath.Join(dir, target, fmt.Sprintf("f%d", i)))
				if errors.Is(err, os.ErrNotExist) {
					gone = true // the version was replaced and removed: read again
					break
				}
				if err != nil {
					errc <- err
					return
				}
				seen[string(b)] = true
			}
			if gone {
				continue
			}
			if len(seen) != 1 {
				errc <- fmt.Errorf("mixed versions in one read: %v", seen)
				return
			}
			reads++
		}
	}()
	for v := 1; v <= 200; v++ {
		src.setCM("app", version(v))
		if changed, err := m.Refresh(p, src); err != nil || !changed {
			t.Fatalf("version %d: %v %v", v, changed, err)
		}
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(dir, "f3")) != "200" {
		t.Fatal("last version")
	}
	t.Logf("%d consistent reads", reads)
}

func TestLocalVolumeSurvivesTeardown(t *testing.T) {
	m, cfg := newManager(t, false)
	p := pod("u1", api.Volume{Name: "data", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: "data-web-0"}})
	mounts, err := m.Prepare(p, api.Container{Name: "db", VolumeMounts: []api.VolumeMount{{Name: "data", MountPath: "/var/lib/db"}}}, newSource())
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(cfg.LocalRoot, "default", "data-web-0")
	if len(mounts) != 1 || mounts[0].Source != want || mounts[0].ReadOnly {
		t.Fatalf("mounts %+v", mounts)
	}
	if err := os.WriteFile(filepath.Join(want, "row"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Teardown("u1"); err != nil {
		t.Fatal(err)
	}
	// The replacement pod finds the data.
	p2 := pod("u2", p.Spec.Volumes...)
	p2.Spec.Volumes[0].PersistentVolumeClaim = &api.PersistentVolumeClaimVolumeSource{ClaimName: "data-web-0", ReadOnly: true}
	mounts, err = m.Prepare(p2, api.Container{Name: "db", VolumeMounts: []api.VolumeMount{{Name: "data", MountPath: "/d"}}}, newSource())
	if err != nil || readFile(t, filepath.Join(mounts[0].Source, "row")) != "1" || !mounts[0].ReadOnly {
		t.Fatalf("local volume after teardown: %+v %v", mounts, err)
	}
}

func TestPathTraversalRejected(t *testing.T) {
	m, _ := newManager(t, false)
	src := newSource()
	src.setCM("app", map[string]string{"k": "v"})
	for _, tc := range []struct {
		name  string
		items []api.KeyToPath
		field string
	}{
		{"dotdot", []api.KeyToPath{{Key: "k", Path: "../../etc/passwd"}}, "items[0].path"},
		{"inner dotdot", []api.KeyToPath{{Key: "k", Path: "a/../../b"}}, "items[0].path"},
		{"absolute", []api.KeyToPath{{Key: "k", Path: "/etc/passwd"}}, "items[0].path"},
		{"reserved", []api.KeyToPath{{Key: "k", Path: "..data"}}, "items[0].path"},
		{"file and dir", []api.KeyToPath{{Key: "k", Path: "a"}, {Key: "k", Path: "a/b"}}, "configMap"},
		{"twice", []api.KeyToPath{{Key: "k", Path: "a"}, {Key: "k", Path: "./a"}}, "items[1].path"},
	} {
		p := pod("t-"+strings.ReplaceAll(tc.name, " ", "-"), api.Volume{Name: "c", ConfigMap: &api.ConfigMapVolumeSource{Name: "app", Items: tc.items}})
		err := m.Setup(p, src)
		if !errors.Is(err, ErrInvalidPath) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// A key that is a path (an object written around validation).
	src.setCM("evil", map[string]string{"../escape": "x"})
	if err := m.Setup(pod("k", api.Volume{Name: "c", ConfigMap: &api.ConfigMapVolumeSource{Name: "evil"}}), src); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("key with '..': %v", err)
	}

	// subPaths.
	p := pod("sp", api.Volume{Name: "e", EmptyDir: &api.EmptyDirVolumeSource{}})
	if err := m.Setup(p, src); err != nil {
		t.Fatal(err)
	}
	vol := m.volumePath(p, &p.Spec.Volumes[0])
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(vol, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(vol, "root")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(vol, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("in", filepath.Join(vol, "inlink")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sub string
		ok  bool
	}{
		{"../../etc", false},
		{"/etc", false},
		{"out", false},
		{"out/sub", false},
		{"root/etc", false},
		{"inlink", true},
		{"inlink/x", true},
		{"in/../in", false}, // '..' is refused even when it stays inside
	} {
		_, err := m.Prepare(p, api.Container{Name: "app", VolumeMounts: []api.VolumeMount{{Name: "e", MountPath: "/m", SubPath: tc.sub}}}, src)
		if (err == nil) != tc.ok {
			t.Errorf("subPath %q: err %v, want ok %v", tc.sub, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrInvalidPath) || !strings.Contains(err.Error(), "volumeMounts[0].subPath")) {
			t.Errorf("subPath %q: error does not name the field: %v", tc.sub, err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("something was created outside the volume: %v", entries)
	}

	// Pod UIDs and claim names are single path elements.
	if err := m.Setup(pod("../x"), src); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("uid: %v", err)
	}
	if err := m.Teardown(".."); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("teardown uid: %v", err)
	}
	if err := m.Setup(pod("c", api.Volume{Name: "d", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: "../x"}}), src); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("claim name: %v", err)
	}
}

func TestIdempotentSetupTeardownAndListPods(t *testing.T) {
	m, cfg := newManager(t, false)
	src := newSource()
	src.setCM("app", map[string]string{"k": "v"})
	vols := []api.Volume{
		{Name: "e", EmptyDir: &api.EmptyDirVolumeSource{}},
		{Name: "c", ConfigMap: &api.ConfigMapVolumeSource{Name: "app"}},
	}
	for _, uid := range []string{"b", "a"} {
		for range 3 {
			if err := m.Setup(pod(uid, vols...), src); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Setup leaves contents alone (Refresh updates them).
	src.setCM("app", map[string]string{"k": "w"})
	if err := m.Setup(pod("a", vols...), src); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(cfg.Root, "a", "volumes", "config-map", "c", "k")) != "v" {
		t.Fatal("Setup rewrote a populated volume")
	}
	uids, err := m.ListPods()
	if err != nil || fmt.Sprint(uids) != "[a b]" {
		t.Fatalf("ListPods = %v %v", uids, err)
	}
	for range 2 {
		if err := m.Teardown("a"); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Teardown("never-seen"); err != nil {
		t.Fatal(err)
	}
	if uids, _ := m.ListPods(); fmt.Sprint(uids) != "[b]" {
		t.Fatalf("ListPods after teardown = %v", uids)
	}
}

func TestUnescapeOctal(t *testing.T) {
	if got := unescapeOctal(`/a\040b\134c\`); got != `/a b\c\` {
		t.Fatalf("got %q", got)
	}
}
