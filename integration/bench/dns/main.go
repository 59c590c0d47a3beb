// Command dns measures Shoal's cluster DNS server (agent/dns) against
// dnsmasq answering the same names, with dnsperf, on loopback.
//
// It loads N Services (ClusterIP, one named port, 10 endpoints each) into
// an agent/dns Server served on 127.0.0.1, writes the same names with the
// same addresses to a hosts file that a private dnsmasq (no upstreams, no
// /etc/hosts, its own port, bound to 127.0.0.1 only) serves, and runs
// dnsperf against each in turn with the same query file: rounds alternate
// the order so the machine's noise falls on both. Each round is a
// saturation run (queries/s) and a run at a fixed rate that records every
// query's latency (p50/p99). Nothing leaves loopback; every run is bounded
// in time; dnsmasq dies with this program.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/shoal-dev/shoal/agent/dns"
	"github.com/shoal-dev/shoal/api"
)

type options struct {
	services    int
	rounds      int
	duration    time.Duration
	latencyQPS  int
	latencyDur  time.Duration
	clients     int
	outstanding int
	threads     int
	nxFraction  float64
	dnsmasq     string
	dnsperf     string
	cpuprofile  string
	readers     int
	sockets     int
}

type result struct {
	qps      float64
	cpu      float64 // the server's CPU seconds during the saturation run
	lost     int
	p50, p99 float64 // milliseconds, at latencyQPS
}

func main() {
	var o options
	flag.IntVar(&o.services, "services", 1000, "services loaded into both servers")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per server (min/median/max are over rounds)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of one saturation run")
	flag.IntVar(&o.latencyQPS, "latency-qps", 10000, "rate of the latency run (0 skips it)")
	flag.DurationVar(&o.latencyDur, "latency-duration", 3*time.Second, "length of one latency run")
	flag.IntVar(&o.clients, "clients", 4, "dnsperf -c: client sockets")
	flag.IntVar(&o.outstanding, "outstanding", 200, "dnsperf -q: queries in flight")
	flag.IntVar(&o.threads, "threads", 1, "dnsperf -T")
	flag.Float64Var(&o.nxFraction, "nx", 0, "fraction of queries for names that do not exist (NXDOMAIN), as a pod's search path makes")
	flag.StringVar(&o.dnsmasq, "dnsmasq", "/usr/sbin/dnsmasq", "the dnsmasq binary")
	flag.StringVar(&o.dnsperf, "dnsperf", "/usr/bin/dnsperf", "the dnsperf binary")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole program (the Shoal server) to this file")
	flag.IntVar(&o.readers, "udp-readers", 0, "goroutines reading each UDP socket (0: the server's default)")
	flag.IntVar(&o.sockets, "udp-sockets", 1, "UDP sockets of Shoal's server, sharing the port with SO_REUSEPORT")
	flag.Parse()

	// Bound the whole run, whatever happens.
	budget := time.Duration(o.rounds)*2*(o.duration+o.latencyDur+20*time.Second) + time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench dns:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "shoal-dns-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // dnsmasq drops to nobody

	// The names: svcI.nsJ.svc.cluster.local → 10.96.x.y.
	var objs []api.Object
	var hosts bytes.Buffer
	var names []string
	for i := range o.services {
		ns, name := fmt.Sprintf("ns%d", i%10), fmt.Sprintf("svc%d", i)
		ip := fmt.Sprintf("10.96.%d.%d", (i+1)>>8&0xff, (i+1)&0xff)
		svc := &api.Service{}
		svc.Kind, svc.Namespace, svc.Name = "Service", ns, name
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
		svc.Spec.Ports = []api.ServicePort{{Name: "http", Protocol: "TCP", Port: 80}}
		ep := &api.Endpoints{}
		ep.Kind, ep.Namespace, ep.Name = "Endpoints", ns, name
		var ss api.EndpointSubset
		for j := range 10 {
			ss.Addresses = append(ss.Addresses, api.EndpointAddress{IP: fmt.Sprintf("10.244.%d.%d", j, i%250+1)})
		}
		ss.Ports = []api.EndpointPort{{Name: "http", Protocol: "TCP", Port: 8080}}
		ep.Subsets = []api.EndpointSubset{ss}
		objs = append(objs, svc, ep)
		fqdn := name + "." + ns + ".svc.cluster.local"
		fmt.Fprintf(&hosts, "%s %s\n", ip, fqdn)
		names = append(names, fqdn)
	}
	hostsFile := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hostsFile, hosts.Bytes(), 0o644); err != nil {
		return err
	}
	// The query file: every name once, shuffled; with -nx, names under
	// the cluster domain that do not exist mixed in.
	r := rand.New(rand.NewPCG(1, 1))
	var queries bytes.Buffer
	nq := len(names) * 4
	for i := range nq {
		if r.Float64() < o.nxFraction {
			fmt.Fprintf(&queries, "nope%d.ns%d.svc.cluster.local A\n", i, i%10)
			continue
		}
		fmt.Fprintf(&queries, "%s A\n", names[r.IntN(len(names))])
	}
	queryFile := filepath.Join(dir, "queries")
	if err := os.WriteFile(queryFile, queries.Bytes(), 0o644); err != nil {
		return err
	}

	// Shoal's server.
	cfg := dns.DefaultConfig()
	cfg.ResolvConfPath = "" // no upstreams: nothing may leave loopback
	if o.readers > 0 {
		cfg.UDPReaders = o.readers
	}
	srv, err := dns.New(cfg)
	if err != nil {
		return err
	}
	srv.Replace(objs)
	pcs, l, err := dns.Listen("127.0.0.1:0", o.sockets)
	if err != nil {
		return err
	}
	pc := pcs[0]
	go srv.Serve(pc, l)
	for _, pc := range pcs[1:] {
		go srv.Serve(pc, nil)
	}
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		srv.Shutdown(sctx)
	}()
	shoalAddr := pc.LocalAddr().(*net.UDPAddr)

	// dnsmasq, on its own port of 127.0.0.1.
	stopDnsmasq, dmPid, dmPort, err := startDnsmasq(ctx, o.dnsmasq, hostsFile, len(names), dir)
	if err != nil {
		return err
	}
	defer stopDnsmasq()

	// Both answer the same.
	for _, n := range []string{names[0], names[len(names)/2], names[len(names)-1]} {
		a, err := lookup(shoalAddr.String(), n)
		if err != nil {
			return fmt.Errorf("shoal: %v", err)
		}
		b, err := lookup(net.JoinHostPort("127.0.0.1", strconv.Itoa(dmPort)), n)
		if err != nil {
			return fmt.Errorf("dnsmasq: %v", err)
		}
		if a != b {
			return fmt.Errorf("%s: shoal says %s, dnsmasq %s", n, a, b)
		}
	}
	fmt.Printf("%d services (%d names in Shoal's index); %d queries in the file, %.0f%% for names that do not exist\n",
		o.services, srv.Names(), nq, 100*o.nxFraction)
	fmt.Printf("dnsperf -c %d -q %d -T %d, %v saturation + %v at %d q/s per round, %d rounds\n",
		o.clients, o.outstanding, o.threads, o.duration, o.latencyDur, o.latencyQPS, o.rounds)

	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	systems := []struct {
		name string
		port int
		pid  int // whose CPU time the server's is
	}{{"shoal", shoalAddr.Port, os.Getpid()}, {"dnsmasq", dmPort, dmPid}}
	res := map[string][]result{}
	for round := range o.rounds {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			sys := systems[i]
			rr, err := measure(ctx, o, sys.port, sys.pid, queryFile)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", sys.name, round+1, err)
			}
			fmt.Printf("round %d %-8s %9.0f q/s  %7.0f q per CPU-s  lost %d  p50 %.3f ms  p99 %.3f ms\n",
				round+1, sys.name, rr.qps, rr.qps*o.duration.Seconds()/rr.cpu, rr.lost, rr.p50, rr.p99)
			res[sys.name] = append(res[sys.name], rr)
		}
	}

	fmt.Println()
	fmt.Printf("%-8s %28s %16s %22s\n", "server", "q/s min / median / max", "q per CPU-s", "p50 / p99 (median)")
	med := map[string]float64{}
	medEff := map[string]float64{}
	for _, sys := range systems {
		rs := res[sys.name]
		q := make([]float64, len(rs))
		p50 := make([]float64, len(rs))
		p99 := make([]float64, len(rs))
		eff := make([]float64, len(rs))
		for i, r := range rs {
			q[i], p50[i], p99[i] = r.qps, r.p50, r.p99
			eff[i] = r.qps * o.duration.Seconds() / r.cpu
		}
		slices.Sort(q)
		med[sys.name], medEff[sys.name] = median(q), median(eff)
		fmt.Printf("%-8s %8.0f / %8.0f / %8.0f %16.0f %9.3f / %.3f ms\n", sys.name, q[0], median(q), q[len(q)-1], median(eff), median(p50), median(p99))
	}
	fmt.Printf("ratio shoal/dnsmasq (medians): %.2fx queries/s, %.2fx queries per CPU-second\n",
		med["shoal"]/med["dnsmasq"], medEff["shoal"]/medEff["dnsmasq"])
	st := srv.Stats()
	fmt.Printf("shoal stats: %+v\n", st)
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// listenPair binds UDP and TCP on the same random port of 127.0.0.1.
func listenPair() (net.PacketConn, net.Listener, error) {
	for range 20 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		l, err := net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
	}
	return nil, nil, errors.New("no free port pair on 127.0.0.1")
}

func freeUDPPort() (int, error) {
	pc, l, err := listenPair()
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	defer l.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port, nil
}

// startDnsmasq runs a dnsmasq that serves the hosts file alone, on
// 127.0.0.1 at a free port, and waits until it answers. stop kills it.
func startDnsmasq(ctx context.Context, bin, hostsFile string, n int, dir string) (stop func(), pid, port int, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		if port, err = freeUDPPort(); err != nil {
			return nil, 0, 0, err
		}
		cmd := exec.CommandContext(ctx, bin,
			"--keep-in-foreground",
			"--conf-file=/dev/null", // not /etc/dnsmasq.conf
			"--no-resolv", "--no-poll", "--no-hosts",
			"--addn-hosts="+hostsFile,
			"--local=/cluster.local/", // unknown names there are NXDOMAIN, never forwarded
			"--listen-address=127.0.0.1", "--bind-interfaces",
			"--port="+strconv.Itoa(port),
			"--cache-size="+strconv.Itoa(max(n, 150)),
			"--local-ttl=5", "--neg-ttl=5",
			"--pid-file="+filepath.Join(dir, "dnsmasq.pid"),
			"--log-facility="+filepath.Join(dir, "dnsmasq.log"),
		)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			return nil, 0, 0, err
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop = func() {
			cmd.Process.Kill()
			<-exited
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			select {
			case err = <-exited:
				err = fmt.Errorf("dnsmasq exited: %v: %s", err, stderr.String())
			default:
				// Any answer at all (NXDOMAIN here) means it is up.
				if _, lerr := lookup(addr, "up.invalid"); lerr == nil || strings.Contains(lerr.Error(), "rcode") {
					return stop, cmd.Process.Pid, port, nil
				}
				continue
			}
			break
		}
		if err == nil {
			stop()
			return nil, 0, 0, fmt.Errorf("dnsmasq did not answer within 10 s: %s", stderr.String())
		}
		// It exited: most likely the port was taken meanwhile; try another.
	}
	return nil, 0, 0, err
}

// lookup asks one A question and returns the address, or an error that
// names the rcode.
func lookup(addr, name string) (string, error) {
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
	c := &mdns.Client{Timeout: 500 * time.Millisecond}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return "", err
	}
	if r.Rcode != mdns.RcodeSuccess || len(r.Answer) == 0 {
		return "", fmt.Errorf("rcode %s, %d answers", mdns.RcodeToString[r.Rcode], len(r.Answer))
	}
	return r.Answer[0].(*mdns.A).A.String(), nil
}

var (
	reQPS  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	reLost = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
	// dnsperf -v: "> NOERROR svc1.ns1.svc.cluster.local A 0.000123"
	reVerbose = regexp.MustCompile(`^> \S+ \S+ \S+ ([0-9.]+)$`)
)

// measure runs dnsperf at saturation, then at a fixed rate with every
// query's latency reported.
func measure(ctx context.Context, o options, port, pid int, queryFile string) (result, error) {
	var r result
	base := []string{"-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", queryFile,
		"-c", strconv.Itoa(o.clients), "-T", strconv.Itoa(o.threads), "-t", "2"}
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return r, err
	}
	out, err := dnsperf(ctx, o.dnsperf, o.duration, append(base,
		"-l", strconv.Itoa(int(o.duration.Seconds())), "-q", strconv.Itoa(o.outstanding)))
	if err != nil {
		return r, err
	}
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return r, err
	}
	r.cpu = cpu1 - cpu0
	m := reQPS.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no queries/s in dnsperf's output:\n%s", out)
	}
	r.qps, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := reLost.FindSubmatch(out); m != nil {
		r.lost, _ = strconv.Atoi(string(m[1]))
	}
	if o.latencyQPS <= 0 {
		return r, nil
	}
	out, err = dnsperf(ctx, o.dnsperf, o.latencyDur, append(base,
		"-l", strconv.Itoa(int(o.latencyDur.Seconds())), "-Q", strconv.Itoa(o.latencyQPS), "-v"))
	if err != nil {
		return r, err
	}
	var lat []float64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := reVerbose.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			lat = append(lat, v*1000)
		}
	}
	if len(lat) == 0 {
		return r, fmt.Errorf("no latencies in dnsperf -v output:\n%.2000s", out)
	}
	slices.Sort(lat)
	r.p50 = lat[len(lat)/2]
	r.p99 = lat[len(lat)*99/100]
	return r, nil
}

// cpuSeconds is the user+system CPU time of a process so far.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14 and stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

func dnsperf(ctx context.Context, bin string, d time.Duration, args []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("dnsperf %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.Bytes(), nil
}
