package benchproc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FreeAddr returns a loopback address with a port that was free a moment
// ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// WaitFor polls cond every 20 ms until it holds or d has passed.
func WaitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", d)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	return nil
}

// StopGrace is how long Stop waits after SIGTERM before SIGKILL.
const StopGrace = 20 * time.Second

// Stop stops a started server with SIGTERM, then SIGKILL after StopGrace,
// and reaps it.
func Stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(StopGrace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Etcd is a three-member etcd cluster on loopback.
type Etcd struct {
	Dir       string      // data directories, logs and certificates, removed by Stop
	Names     []string    // member names, e1..e3
	Endpoints []string    // client URLs, one a member
	Cmds      []*exec.Cmd // the member processes
	TLS       *EtcdTLS    // a client's credentials; nil: plaintext
}

// StartEtcd starts three etcd members (bin) with their default settings,
// in plaintext, in a new temporary directory named after prefix; token is
// the cluster token. On error nothing is left running.
func StartEtcd(bin, prefix, token string) (*Etcd, error) {
	return startEtcd(bin, prefix, token, false)
}

// StartEtcdTLS is StartEtcd with TLS the way Kubernetes (kubeadm) runs
// etcd: HTTPS client URLs with client certificates required
// (--cert-file, --key-file, --client-cert-auth, --trusted-ca-file) and
// HTTPS peer URLs with mutual TLS between members (--peer-cert-file,
// --peer-key-file, --peer-client-cert-auth, --peer-trusted-ca-file). The
// certificates, from a throwaway CA, are generated into the cluster's
// directory; the returned Etcd's TLS names the client's.
func StartEtcdTLS(bin, prefix, token string) (*Etcd, error) {
	return startEtcd(bin, prefix, token, true)
}

func startEtcd(bin, prefix, token string, secure bool) (*Etcd, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	e := &Etcd{Dir: dir}
	scheme := "http://"
	if secure {
		scheme = "https://"
	}
	var initial, peers []string
	for i := 1; i <= 3; i++ {
		p, err1 := FreeAddr()
		c, err2 := FreeAddr()
		if err := errors.Join(err1, err2); err != nil {
			e.Stop()
			return nil, err
		}
		name := fmt.Sprintf("e%d", i)
		e.Names = append(e.Names, name)
		peers = append(peers, scheme+p)
		e.Endpoints = append(e.Endpoints, scheme+c)
		initial = append(initial, name+"="+scheme+p)
	}
	var certs *etcdCerts
	if secure {
		if certs, err = writeEtcdCerts(dir, e.Names); err != nil {
			e.Stop()
			return nil, fmt.Errorf("etcd certificates: %w", err)
		}
		e.TLS = &certs.client
	}
	for i, name := range e.Names {
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			e.Stop()
			return nil, err
		}
		args := []string{
			"--name", name,
			"--data-dir", filepath.Join(dir, name),
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--listen-client-urls", e.Endpoints[i], "--advertise-client-urls", e.Endpoints[i],
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", token}
		if secure {
			f := certs.members[name]
			args = append(args,
				"--cert-file", f[0], "--key-file", f[1],
				"--client-cert-auth", "--trusted-ca-file", certs.ca,
				"--peer-cert-file", f[0], "--peer-key-file", f[1],
				"--peer-client-cert-auth", "--peer-trusted-ca-file", certs.ca)
		}
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		err = cmd.Start()
		logf.Close()
		if err != nil {
			e.Stop()
			return nil, err
		}
		e.Cmds = append(e.Cmds, cmd)
	}
	return e, nil
}

// Stop stops every member and removes the directory.
func (e *Etcd) Stop() {
	for _, c := range e.Cmds {
		Stop(c)
	}
	e.Cmds = nil
	_ = os.RemoveAll(e.Dir)
}

// Load runs the etcdload program (see integration/bench/etcdload) against
// the cluster and returns its output: writers concurrent writers for d or
// maxOps puts of size bytes, to the leader only or spread over the members.
// Its errors go to stderr. A TLS cluster is loaded over TLS with the
// client certificate.
func (e *Etcd) Load(etcdLoad string, writers int, d time.Duration, size, maxOps int, leaderOnly bool) ([]byte, error) {
	args := []string{"-endpoints", strings.Join(e.Endpoints, ","), "-writers", strconv.Itoa(writers),
		"-duration", d.String(), "-size", strconv.Itoa(size), "-max-ops", strconv.Itoa(maxOps),
		"-leader-only=" + strconv.FormatBool(leaderOnly)}
	if e.TLS != nil {
		args = append(args, "-cacert", e.TLS.CA, "-cert", e.TLS.Cert, "-key", e.TLS.Key)
	}
	cmd := exec.Command(etcdLoad, args...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", etcdLoad, err)
	}
	return b, nil
}

// LoadAvg is the machine's load averages over 1, 5 and 15 minutes as
// /proc/loadavg gives them, or "?": benches print it next to each figure.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// RaiseFileLimit lifts this process' soft limit on open files to the hard
// one and returns it: a bench with many sockets needs more than the
// default 1,024.
func RaiseFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	return l.Cur
}
