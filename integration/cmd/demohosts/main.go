// Command demohosts is `make demo`: three simulated hosts on this machine
// (package hosts: network namespaces on a switch namespace, a private
// containerd each, the agent inside each namespace, provisioned by the
// same script as a Vagrant VM), the example app deployed on them, and a
// walk through what a user cares about: self-elected voters, pods spread
// over the hosts, the Service by ClusterIP and by name, the leader's agent
// killed and the cluster carrying on, the agent back.
//
//	demohosts up -dir DIR -bin bin/shoal -manifest integration/examples/web.yaml
//	    runs the walk-through, prints "==> ready", then keeps the cluster
//	    until SIGTERM or SIGINT, when it removes everything it made
//	demohosts cleanup -dir DIR
//	    removes what a crashed or killed run left (processes in the demo's
//	    namespaces, its containers, mounts, the namespaces)
//
// Nothing in the machine's own network namespace changes: on exit it
// compares the root namespace's links, routes, nftables tables and
// forwarding sysctls with what they were and says so.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/hosts"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// name prefixes the demo's namespaces: shoal-demo-h1..3, shoal-demo-sw.
const name = "shoal-demo"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: demohosts up|cleanup -dir DIR [-bin FILE -manifest FILE]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", "/tmp/shoal-demo-hosts", "the demo's directory (host dirs, logs, CLI wrappers)")
	bin := fs.String("bin", "bin/shoal", "the shoal binary")
	manifest := fs.String("manifest", "integration/examples/web.yaml", "the app to deploy")
	_ = fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "up":
		err = up(*dir, *bin, *manifest)
	case "cleanup":
		err = hosts.Cleanup(name, *dir)
	default:
		err = fmt.Errorf("unknown command %q: up or cleanup", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demohosts:", err)
		os.Exit(1)
	}
}

func up(dir, bin, manifest string) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root (network namespaces, containerd)")
	}
	for _, p := range []*string{&dir, &bin, &manifest} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	say("three hosts on this machine: network namespaces %s-h1..3 on a switch namespace %s-sw (10.250.0.0/24),", name, name)
	say("each with its own containerd and a `shoal agent` inside it, provisioned by integration/hosts/provision.sh")
	say("(no flag names a leader: the agents elect their voters and leader themselves)")
	c, err := hosts.New(hosts.Config{Bin: bin, Hosts: 3, Name: name, Dir: dir, RegistryPort: 5000,
		Logf: func(f string, a ...any) { fmt.Printf("    "+f+"\n", a...) }})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("==> stopping the demo: agents, containers, containerds, namespaces")
		if err := c.Close(); err != nil {
			fmt.Println("demohosts:", err)
		} else {
			fmt.Println("==> stopped; the machine's own network namespace is as it was (links, routes, nftables tables, sysctls)")
		}
	}()
	if err := walk(sig, c, dir, bin, manifest); err != nil {
		return err
	}
	fmt.Println("==> ready")
	<-sig.Done()
	return nil
}

func say(f string, a ...any) { fmt.Printf("==> "+f+"\n", a...) }

// show runs the CLI on h and prints the command and its output.
func show(c *hosts.Cluster, h *hosts.Host, args ...string) error {
	fmt.Printf("\n%s$ shoal %s\n", h.Name, strings.Join(args, " "))
	out, err := c.CLI(h, args...)
	fmt.Print(out)
	return err
}

func walk(ctx context.Context, c *hosts.Cluster, dir, bin, manifest string) error {
	if _, err := c.PushImage("shoal/web", "1.0", testenv.TestProgram); err != nil {
		return fmt.Errorf("the demo image: %w", err)
	}
	hs := c.Hosts()
	h1 := hs[0]
	if err := writeWrappers(c, dir, bin); err != nil {
		return err
	}
	for _, args := range [][]string{{"members"}, {"status"}, {"apply", "-f", manifest},
		{"rollout", "status", "deployment/web", "--timeout", "180s"}, {"get", "pods", "-o", "wide"}, {"get", "service", "web"}, {"get", "endpoints", "web"}} {
		if err := show(c, h1, args...); err != nil {
			return err
		}
	}
	cl := c.Client(h1)
	o, err := cl.Get(ctx, "Service", "default", "web")
	if err != nil {
		return err
	}
	vip := o.(*api.Service).Spec.ClusterIP
	h2 := hs[1]
	fmt.Printf("\n%s$ curl http://%s/hostname   # the ClusterIP, from host h2's network, three times\n", h2.Name, vip)
	for range 3 {
		if err := answer(ctx, c, h2, "http://"+vip+"/hostname", 30*time.Second); err != nil {
			return err
		}
	}
	objs, _, err := cl.List(ctx, "Pod", "default", api.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(objs) == 0 {
		return fmt.Errorf("no web pod: %v", err)
	}
	pod := objs[0].(*api.Pod)
	if err := retry(ctx, 30*time.Second, func() error {
		return show(c, h1, "exec", pod.Name, "--", "/app", "get", "http://web/hostname")
	}); err != nil {
		return fmt.Errorf("the Service by name from a pod: %w", err)
	}

	fmt.Println()
	say("killing the leader's agent (SIGKILL); its containers keep running")
	var leader *hosts.Host
	if !hosts.WaitUntil(90*time.Second, func() bool { leader = c.StableLeader(ctx, 3); return leader != nil }) {
		return errors.New("no stable leader with 3 voters within 90 s")
	}
	say("the leader is %s", leader.Name)
	if err := c.Kill(leader); err != nil {
		return err
	}
	killed := time.Now()
	var other *hosts.Host
	for _, h := range hs {
		if h != leader {
			other = h
			break
		}
	}
	oc := c.Client(other)
	var werr error
	if !hosts.WaitUntil(60*time.Second, func() bool {
		_, werr = oc.Create(ctx, &api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "after-failover", Namespace: "default"}, Data: map[string]string{"written": time.Now().UTC().Format(time.RFC3339)}})
		return werr == nil || api.IsAlreadyExists(werr)
	}) {
		return fmt.Errorf("no write accepted by %s within 60 s: %v", other.Name, werr)
	}
	say("a write (ConfigMap after-failover) accepted through %s %v after the kill", other.Name, time.Since(killed).Round(10*time.Millisecond))
	var newLeader *hosts.Host
	hosts.WaitUntil(30*time.Second, func() bool {
		l, _, err := c.Leader(ctx)
		newLeader = l
		return err == nil && l != leader
	})
	if newLeader != nil {
		say("the new leader is %s", newLeader.Name)
	}
	if err := show(c, other, "status"); err != nil {
		return err
	}
	fmt.Printf("\n%s$ curl http://%s/hostname   # the app still answers\n", other.Name, vip)
	if err := answer(ctx, c, other, "http://"+vip+"/hostname", 30*time.Second); err != nil {
		return err
	}

	fmt.Println()
	say("starting %s's agent again: it rejoins, its pods were never stopped", leader.Name)
	if err := c.StartAgent(leader); err != nil {
		return err
	}
	if err := c.WaitFormed(2 * time.Minute); err != nil {
		return err
	}
	for _, args := range [][]string{{"members"}, {"get", "nodes"}, {"get", "pods", "-o", "wide"}} {
		if err := show(c, leader, args...); err != nil {
			return err
		}
	}
	fmt.Printf(`
The demo keeps running (log: %[1]s/demo.log; agent logs: %[1]s/h1/agent.log ...).
  The CLI on any host:   %[1]s/shoal-h1 get pods -o wide      (or shoal-h2, shoal-h3)
      which runs:        ip netns exec %[2]s-h1 env SHOAL_ADDR=https://%[3]s SHOAL_CA_FILE=%[4]s SHOAL_TOKEN=$(cat %[5]s) %[6]s ...
  A shell in a host:     ip netns exec %[2]s-h1 bash       (curl http://%[7]s/hostname works there)
  Kill an agent:         kill -9 $(cat %[1]s/h2/agent.pid)
  Stop everything:       make demo-stop
`, dir, name, h1.API(), c.Creds.CAFile, filepath.Join(c.Creds.DataDir, testenv.AdminTokenFile), bin, vip)
	return nil
}

// answer GETs url from h's namespace until it answers (timeout at most)
// and prints the body.
func answer(ctx context.Context, c *hosts.Cluster, h *hosts.Host, url string, timeout time.Duration) error {
	return retry(ctx, timeout, func() error {
		body, err := c.Get(ctx, h, url)
		if err == nil {
			fmt.Print(body)
		}
		return err
	})
}

// retry calls f every 100 ms until it succeeds or timeout passes.
func retry(ctx context.Context, timeout time.Duration, f func() error) error {
	var err error
	hosts.WaitUntil(timeout, func() bool {
		err = f()
		return err == nil || ctx.Err() != nil
	})
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// writeWrappers writes DIR/shoal-hN: the CLI inside host N's namespace,
// pointed at its agent with the cluster's CA and admin token.
func writeWrappers(c *hosts.Cluster, dir, bin string) error {
	for _, h := range c.Hosts() {
		script := fmt.Sprintf(`#!/bin/sh
# The shoal CLI inside host %[1]s's network namespace, against its agent.
SHOAL_TOKEN=$(cat %[2]s) || exit 1
export SHOAL_TOKEN SHOAL_ADDR=https://%[3]s SHOAL_CA_FILE=%[4]s
exec ip netns exec %[5]s %[6]s "$@"
`, h.Name, filepath.Join(c.Creds.DataDir, testenv.AdminTokenFile), h.API(), c.Creds.CAFile, h.NetNS, bin)
		if err := os.WriteFile(filepath.Join(dir, "shoal-"+h.Name), []byte(script), 0o755); err != nil {
			return err
		}
	}
	return nil
}
