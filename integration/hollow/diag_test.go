package hollow

import (
	"context"
	"net"
	"net/http"
	_ "net/http/pprof" // served only when SHOAL_HOLLOW_PPROF is set
	"os"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// servePprof serves net/http/pprof on the loopback address in
// SHOAL_HOLLOW_PPROF (e.g. 127.0.0.1:6061), so that a run that does not
// end can still be profiled and its goroutines dumped while it stalls.
func servePprof(t *testing.T) {
	addr := os.Getenv("SHOAL_HOLLOW_PPROF")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("SHOAL_HOLLOW_PPROF=%q: want a loopback host:port", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// watchRaft logs, every interval until ctx ends, each voter's Raft state,
// term and time since its last contact with the leader: the record of
// when leadership was lost and how long followers had not heard from it.
func watchRaft(ctx context.Context, t *testing.T, c *Cluster, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.mu.Lock()
		voters := append([]*Member(nil), c.voters...)
		c.mu.Unlock()
		line := ""
		for _, m := range voters {
			n := m.Agent.Node()
			if n == nil || m.killed.Load() {
				continue
			}
			s := n.Status()
			lc := "-"
			if !s.LastContact.IsZero() {
				lc = time.Since(s.LastContact).Round(time.Millisecond).String()
			}
			line += " " + s.ID + "=" + s.State[:1] + "/t" + strconv.FormatUint(s.Term, 10) + "/c" + lc
		}
		t.Logf("raft:%s load %s", line, loadavg())
	}
}

// profileApply starts a CPU profile of the whole process into the file
// named by SHOAL_HOLLOW_CPUPROFILE, if set, and returns what stops it: the
// benchmark wraps the apply in it, so the profile shows where the
// control plane and the hollow nodes spend the apply's CPU.
func profileApply(t *testing.T) (stop func()) {
	path := os.Getenv("SHOAL_HOLLOW_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}
}

// processCPU is the user and system CPU this process has used so far.
func processCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
