package testenv

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Registry is an in-memory OCI registry (go-containerregistry's
// pkg/registry) served over plain HTTP on 127.0.0.1.
type Registry struct {
	server *httptest.Server

	mu        sync.Mutex
	manifests map[string]int // GET/HEAD of /v2/<repo>/manifests/<ref>, by repo
}

// StartRegistry starts a registry on 127.0.0.1 with a kernel-chosen port and
// closes it at test cleanup. It needs no root.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	r := NewRegistry()
	t.Cleanup(r.Close)
	return r
}

// NewRegistry is StartRegistry for TestMain: the caller must call Close.
func NewRegistry() *Registry {
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r := &Registry{manifests: map[string]int{}}
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if i := strings.Index(req.URL.Path, "/manifests/"); i > 0 && strings.HasPrefix(req.URL.Path, "/v2/") {
			r.mu.Lock()
			r.manifests[req.URL.Path[len("/v2/"):i]]++
			r.mu.Unlock()
		}
		h.ServeHTTP(w, req)
	}))
	return r
}

// Addr is the registry's host:port, e.g. 127.0.0.1:41234.
func (r *Registry) Addr() string { return r.server.Listener.Addr().String() }

// ManifestRequests is how many times a manifest of repo was requested (GET
// or HEAD, pushes included): a pull resolves the manifest at least once.
func (r *Registry) ManifestRequests(repo string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.manifests[repo]
}

// Handler serves the registry's API: serve it on more listeners (e.g. one
// inside each simulated host's network namespace) to reach the same images.
func (r *Registry) Handler() http.Handler { return r.server.Config.Handler }

// Close stops the registry.
func (r *Registry) Close() { r.server.Close() }

// TestImage builds TestProgram into repo:tag on reg (cached) and returns its
// reference.
func TestImage(t testing.TB, reg *Registry) string {
	t.Helper()
	return BuildImage(t, reg, "shoal/testprog", "v1", TestProgram)
}

// BuildImage compiles program (the Go source of a package main without
// dependencies) into a static binary, packs it as /app into a one-layer image
// with Entrypoint ["/app"], pushes it to reg as repo:tag and returns the
// reference (127.0.0.1:PORT/repo:tag).
//
// Binaries are cached by the hash of the source under the system temp
// directory, so every test of a run (and later runs) pay the compile once.
func BuildImage(t testing.TB, reg *Registry, repo, tag, program string) string {
	t.Helper()
	ref, err := BuildAndPush(reg.Addr(), repo, tag, program)
	if err != nil {
		t.Fatalf("build image %s:%s: %v", repo, tag, err)
	}
	return ref
}

// BuildAndPush is BuildImage without a testing.TB, for TestMain and benchmark
// programs. registry is a host:port serving plain HTTP.
func BuildAndPush(registry, repo, tag, program string) (string, error) {
	bin, err := CompileProgram(program)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var layerTar bytes.Buffer
	tw := tar.NewWriter(&layerTar)
	if err := tw.WriteHeader(&tar.Header{
		Name: "app", Mode: 0o755, Size: int64(len(data)),
		Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0),
	}); err != nil {
		return "", err
	}
	if _, err := tw.Write(data); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	layerBytes := layerTar.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	})
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{
		Entrypoint: []string{"/app"},
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		WorkingDir: "/",
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "", err
	}
	refStr := fmt.Sprintf("%s/%s:%s", registry, repo, tag)
	ref, err := name.ParseReference(refStr, name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img); err != nil {
		return "", fmt.Errorf("push %s: %w", refStr, err)
	}
	return refStr, nil
}

var compileMu sync.Mutex

// CompileProgram builds program with CGO_ENABLED=0 and returns the path of
// the static binary, reusing a binary built from the same source before.
func CompileProgram(program string) (string, error) {
	compileMu.Lock()
	defer compileMu.Unlock()
	sum := sha256.Sum256([]byte(runtime.Version() + "\x00" + runtime.GOARCH + "\x00" + program))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("shoal-testenv-%d", os.Getuid()), hex.EncodeToString(sum[:12]))
	bin := filepath.Join(dir, "app")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src, err := os.MkdirTemp(dir, "src")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(program), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module testprog\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			return "", fmt.Errorf("no go toolchain to build the test image: %w", err)
		}
	}
	tmp := filepath.Join(src, "app")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, strings.TrimSpace(string(out)))
	}
	// Rename is atomic: a concurrent test binary sees no binary or a whole one.
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}
