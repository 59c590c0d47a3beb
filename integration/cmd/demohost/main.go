// Command demohost prepares one machine for `make demo-dev` and keeps it so
// until it is stopped: a private containerd (its own root, state and socket,
// so the machine's own containerd, if any, is left alone), an image registry
// on 127.0.0.1:5000 holding the demo's image built from a small Go program,
// and a network namespace in which the agent wires its pods, so that the
// machine's own network is never touched. It writes the settings the agent
// needs as KEY=VALUE lines, then waits for SIGTERM and removes everything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/shoal-dev/shoal/integration/testenv"
)

func main() {
	envFile := flag.String("env", "", "write the agent's settings here (KEY=VALUE lines)")
	regAddr := flag.String("registry", "127.0.0.1:5000", "where the image registry listens (loopback)")
	netnsName := flag.String("netns", "shoal-demo", "name of the network namespace for pod networking")
	flag.Parse()
	if err := run(*envFile, *regAddr, *netnsName); err != nil {
		fmt.Fprintln(os.Stderr, "demohost:", err)
		os.Exit(1)
	}
}

func run(envFile, regAddr, netnsName string) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root (containerd, network namespaces)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := net.Listen("tcp", regAddr)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	image, err := testenv.BuildAndPush(ln.Addr().String(), "shoal/web", "1.0", testenv.TestProgram)
	if err != nil {
		return fmt.Errorf("building the demo image: %w", err)
	}

	ctrd, err := testenv.LaunchContainerd()
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	defer ctrd.Stop()

	// A leftover namespace of an earlier demo that was killed hard.
	if old, err := os.Stat("/run/netns/" + netnsName); err == nil && !old.IsDir() {
		_ = (&testenv.NetNS{Name: netnsName, Path: "/run/netns/" + netnsName}).Delete()
	}
	ns, err := testenv.CreateNetNS(netnsName)
	if err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	defer ns.Delete()

	settings := []string{
		"SHOAL_DEMO_IMAGE=" + image,
		"SHOAL_DEMO_CONTAINERD_SOCKET=" + ctrd.Socket,
		"SHOAL_DEMO_CONTAINERD_NAMESPACE=" + ctrd.Namespace,
		"SHOAL_DEMO_RUNC_ROOT=" + ctrd.RuncRoot,
		"SHOAL_DEMO_CGROUP_PARENT=" + ctrd.CgroupParent,
		"SHOAL_DEMO_NETNS=" + ns.Path,
		"SHOAL_DEMO_NETNS_NAME=" + ns.Name,
	}
	out := strings.Join(settings, "\n") + "\n"
	if envFile == "" {
		fmt.Print(out)
	} else if err := os.WriteFile(envFile, []byte(out), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "demohost: ready (containerd", ctrd.Socket+", registry", ln.Addr().String()+", netns", ns.Path+")")
	select {
	case <-ctx.Done():
	case <-ctrd.Exited():
		return errors.New("containerd exited")
	}
	return nil
}
