package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-dev/shoal/agent/apiserver"
	"github.com/shoal-dev/shoal/agent/follow"
	"github.com/shoal-dev/shoal/agent/internal/metrics"
	"github.com/shoal-dev/shoal/agent/kubelet"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/network"
	"github.com/shoal-dev/shoal/dataplane/runtime"
	"github.com/shoal-dev/shoal/dataplane/volume"
)

// HostConfig says whether and how this agent runs the pods bound to its
// node. With Enabled false the agent takes part in the control plane only.
type HostConfig struct {
	Enabled bool
	// ContainerdSocket is the containerd daemon's socket (absolute path).
	ContainerdSocket string
	// ContainerdNamespace keeps Shoal's containers apart ("shoal").
	ContainerdNamespace string
	// RuncRoot and CgroupParent separate two agents on one machine (tests,
	// demos); empty means the runtime's defaults.
	RuncRoot, CgroupParent string
	// OCIRuntime is the OCI runtime new containers run under: "runc",
	// "crun", "auto" for crun when it is installed and usable, else runc;
	// "" is runc (runtime.Config.OCIRuntime).
	OCIRuntime string
	// InsecureRegistries are host:port registries reached over plain HTTP.
	InsecureRegistries []string
	// Mirrors maps a registry host to mirror hosts tried first.
	Mirrors map[string][]string
	// HostNetNS is the network namespace pod networking lives in: empty
	// means the agent's own. Demos and tests give a namespace they made.
	HostNetNS string
	// StateDir holds pod network namespaces, IPAM and volumes (default
	// DATA_DIR/host); LogDir holds container logs (default DATA_DIR/logs).
	StateDir, LogDir string
	// Services turns on service load balancing (nftables) and cluster
	// DNS for the pods of this node.
	Services bool
	// ClusterDomain is the DNS domain of Services ("cluster.local").
	ClusterDomain string
	// DNSUpstreams answer names outside ClusterDomain; empty means the
	// nameservers of /etc/resolv.conf.
	DNSUpstreams []string
	// Fake, when set, stands in for containerd, CNI and volumes: the node
	// loop runs over these parts, with no routes and no services. Only
	// for benchmarks that run many simulated hosts in one process
	// (integration/hollow); shoal agent never sets it.
	Fake *FakeHost
}

// FakeHost are in-process stand-ins for a host's runtime, pod network and
// volumes (see HostConfig.Fake).
type FakeHost struct {
	Runtime kubelet.NodeRuntime
	Network kubelet.PodNetworks
	Volumes kubelet.PodVolumes
}

// hostState holds the running kubelet.Loop, for the log and exec handlers.
type hostState struct {
	loop atomic.Pointer[kubelet.Loop]
}

// runHost waits until the leader has given this node a pod CIDR, then runs
// its pods: the containerd runtime, CNI networking, volumes, probes, routes
// to the other nodes' pods, and the node loop fed by a watch of the pods
// bound here.
func (a *Agent) runHost(ctx context.Context) {
	hc := a.cfg.Host
	podCIDR := a.waitPodCIDR(ctx)
	if podCIDR == "" {
		return
	}
	if hc.Fake != nil {
		a.runFakeHost(ctx, hc.Fake)
		return
	}
	if hc.StateDir == "" {
		hc.StateDir = filepath.Join(a.cfg.DataDir, "host")
	}
	if hc.LogDir == "" {
		hc.LogDir = filepath.Join(a.cfg.DataDir, "logs")
	}
	cn := a.cfg.clusterNet()
	rc := runtime.DefaultConfig()
	if hc.ContainerdSocket != "" {
		rc.Socket = hc.ContainerdSocket
	}
	if hc.ContainerdNamespace != "" {
		rc.Namespace = hc.ContainerdNamespace
	}
	rc.RuncRoot, rc.CgroupParent, rc.OCIRuntime = hc.RuncRoot, hc.CgroupParent, hc.OCIRuntime
	rc.InsecureRegistries, rc.Mirrors, rc.LogDir = hc.InsecureRegistries, hc.Mirrors, hc.LogDir
	rt, err := runtime.New(ctx, rc)
	if err != nil {
		a.hostFailed(ctx, "containerd", err)
		return
	}
	defer rt.Close()
	a.log.Info("containers start under", "oci-runtime", rt.OCIRuntime())
	nc := network.DefaultConfig()
	nc.HostNetNS, nc.StateDir = hc.HostNetNS, filepath.Join(hc.StateDir, "network")
	nc.PodCIDR, nc.ClusterCIDR, nc.ServiceCIDR = podCIDR, cn.ClusterCIDR, cn.ServiceCIDR
	netw, err := network.New(nc)
	if err != nil {
		a.hostFailed(ctx, "pod network", err)
		return
	}
	defer netw.Close()
	if err := netw.EnsureHost(); err != nil {
		a.hostFailed(ctx, "pod network", err)
		return
	}
	vols, err := volume.New(volume.Config{Root: filepath.Join(hc.StateDir, "pods"), LocalRoot: filepath.Join(hc.StateDir, "local"), UseTmpfs: true})
	if err != nil {
		a.hostFailed(ctx, "volumes", err)
		return
	}
	pods, follower, lc, err := a.nodeLoopBase(hc.LogDir)
	if err != nil {
		a.hostFailed(ctx, "pod watch", err)
		return
	}
	lc.Runtime, lc.Network, lc.Volumes = rt, netw, vols
	lc.HostPathAllow = a.cfg.HostPathAllow
	lc.Events = a.events.For(componentKubelet)
	lc.Metrics = a.metrics.Node
	if hc.HostNetNS != "" {
		lc.ProbeDial = kubelet.NetNSDialer(hc.HostNetNS)
	}
	var svc *services
	if hc.Services {
		svc = a.startServices(ctx, hc, podCIDR, cn.ClusterCIDR)
		if svc != nil {
			defer svc.stop()
			if svc.dns != nil {
				lc.ResolvConf, lc.ResolvDir = svc.resolvConf, filepath.Join(hc.StateDir, "resolv")
			}
		}
	}
	loop, err := kubelet.New(lc)
	if err != nil {
		a.hostFailed(ctx, "node loop", err)
		return
	}
	a.host.loop.Store(loop)
	defer a.host.loop.Store(nil)
	a.metrics.SetPods(loop.PodPhases)
	defer a.metrics.SetPods(nil)
	a.log.Info("running pods", "podCIDR", podCIDR, "containerd", rc.Socket)
	var wg sync.WaitGroup
	wg.Go(func() { follower.Run(ctx, pods.FollowHandler(follower)) })
	wg.Go(func() { a.syncRoutes(ctx, netw, podCIDR) })
	wg.Go(func() { loop.Run(ctx) })
	if svc != nil {
		wg.Go(func() { svc.run(ctx) })
	}
	wg.Wait()
}

// runFakeHost runs the node loop over the stand-ins of fh, fed by the same
// watch of this node's pods as runHost's.
func (a *Agent) runFakeHost(ctx context.Context, fh *FakeHost) {
	pods, follower, lc, err := a.nodeLoopBase(filepath.Join(a.cfg.DataDir, "logs"))
	if err != nil {
		a.hostFailed(ctx, "pod watch", err)
		return
	}
	lc.Runtime, lc.Network, lc.Volumes = fh.Runtime, fh.Network, fh.Volumes
	loop, err := kubelet.New(lc)
	if err != nil {
		a.hostFailed(ctx, "node loop", err)
		return
	}
	a.host.loop.Store(loop)
	defer a.host.loop.Store(nil)
	var wg sync.WaitGroup
	wg.Go(func() { follower.Run(ctx, pods.FollowHandler(follower)) })
	wg.Go(func() { loop.Run(ctx) })
	wg.Wait()
}

// nodeLoopBase is what runHost and runFakeHost share: the watch of this
// node's pods feeding a pod set, and a node-loop configuration wired to
// this agent's API, without its runtime, network and volumes.
func (a *Agent) nodeLoopBase(logDir string) (*kubelet.PodSet, *follow.Follower, kubelet.Config, error) {
	pods := kubelet.NewPodSet()
	follower, err := follow.New(follow.Config{
		Endpoints: a.followEndpoints, Kind: "Pod", FieldSelector: "spec.nodeName=" + a.cfg.NodeName, Logger: a.log,
		NewClient: a.followClient,
	})
	if err != nil {
		return nil, nil, kubelet.Config{}, err
	}
	lc := kubelet.DefaultConfig()
	lc.NodeName, lc.HostIP = a.cfg.NodeName, a.hostIP()
	lc.Objects, lc.Pods, lc.Status = apiObjects{a.client}, pods, apiStatus{a.client}
	lc.LogDir, lc.Logger = logDir, a.log.With("loop", "node")
	return pods, follower, lc, nil
}

func (a *Agent) hostFailed(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		a.log.Error("cannot run pods on this host", "part", what, "err", err)
	}
}

// waitPodCIDR reads this node's Node object until the leader has set its
// pod CIDR; "" when ctx ends first. It reads again at once when
// registerLoop has written the Node (the leader's controller assigns the
// CIDR within moments then), and otherwise spaces its reads with a
// back-off (retryBackoff from podCIDRFirstPoll to podCIDRMaxPoll): with a
// thousand agents waiting on a slow or starved control plane, a read every
// half second from each was a load of its own.
func (a *Agent) waitPodCIDR(ctx context.Context) string {
	registered := a.kicks.sub(kickRegistered)
	poll := retryBackoff{first: podCIDRFirstPoll, limit: podCIDRMaxPoll}
	for {
		rctx, cancel := context.WithTimeout(ctx, nodeRequestTimeout)
		obj, err := a.client.GetWithOptions(rctx, "Node", "", a.cfg.NodeName, api.GetOptions{Stale: true})
		cancel()
		if err == nil {
			if cidr := obj.(*api.Node).Spec.PodCIDR; cidr != "" {
				return cidr
			}
		}
		if !podCIDRWait(ctx, registered, &poll) {
			return ""
		}
	}
}

// podCIDRWait waits poll's next delay before waitPodCIDR reads again; a
// registration (registered) restarts the wait from the first, shortest
// delay, as the CIDR follows it closely. It reports false when ctx ended.
func podCIDRWait(ctx context.Context, registered <-chan struct{}, poll *retryBackoff) bool {
	for {
		t := time.NewTimer(poll.next())
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-registered:
			t.Stop()
			poll.reset()
		case <-t.C:
			return true
		}
	}
}

// followEndpoints are the APIs a watch of this node's pods reads from: the
// agent's own on a voter (its store is a replica), then the other voters.
func (a *Agent) followEndpoints() []string {
	var out []string
	if a.Node() != nil && a.ln != nil {
		out = append(out, a.ln.Addr().String())
	}
	return append(out, a.voterAPIs()...)
}

// hostIP is the address the node reports and other nodes route pods via:
// NodeIP if set, else the API's advertised IP.
func (a *Agent) hostIP() string {
	if a.cfg.NodeIP != "" {
		return a.cfg.NodeIP
	}
	host, _, err := net.SplitHostPort(a.apiAdv)
	if err != nil {
		return ""
	}
	return host
}

// syncRoutes keeps a route to every other node's pod CIDR via its address.
// Nodes whose pod CIDR this node must not route (nodeRoutes) are left out
// and logged once each, when they first are.
func (a *Agent) syncRoutes(ctx context.Context, netw *network.Network, podCIDR string) {
	nodes, err := follow.New(follow.Config{Endpoints: a.followEndpoints, Kind: "Node", Logger: a.log, NewClient: a.followClient})
	if err != nil {
		return
	}
	cluster, _ := netip.ParsePrefix(a.cfg.clusterNet().ClusterCIDR)
	own, _ := netip.ParsePrefix(podCIDR)
	var last string
	logged := map[string]bool{}
	nodes.Run(ctx, func(follow.Event) {
		var ns []*api.Node
		for _, o := range nodes.Objects() {
			ns = append(ns, o.(*api.Node))
		}
		routes, ignored := nodeRoutes(ns, a.cfg.NodeName, cluster.Masked(), own.Masked())
		now := make(map[string]bool, len(ignored))
		for _, why := range ignored {
			if now[why] = true; !logged[why] {
				a.log.Warn("no route to a node's pods", "reason", why)
			}
		}
		logged = now
		key := fmt.Sprint(routes)
		if key == last {
			return
		}
		if err := netw.SyncRoutes(routes); err != nil {
			a.log.Warn("routes to other nodes' pods", "err", err)
			return
		}
		last = key
	})
}

// apiObjects reads ConfigMaps and Secrets for env and volumes through the
// agent's own API.
type apiObjects struct{ c *api.Client }

func (o apiObjects) ConfigMap(ns, name string) (*api.ConfigMap, error) {
	obj, err := o.get("ConfigMap", ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*api.ConfigMap), nil
}

func (o apiObjects) Secret(ns, name string) (*api.Secret, error) {
	obj, err := o.get("Secret", ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*api.Secret), nil
}

func (o apiObjects) get(kind, ns, name string) (api.Object, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	obj, err := o.c.GetWithOptions(ctx, kind, ns, name, api.GetOptions{Stale: true})
	if api.IsNotFound(err) {
		return nil, fmt.Errorf("%w: %w", volume.ErrNotFound, err)
	}
	return obj, err
}

// apiStatus writes pod status through the agent's own API (forwarded to
// the leader).
type apiStatus struct{ c *api.Client }

func (s apiStatus) UpdatePodStatus(ctx context.Context, pod *api.Pod) error {
	_, err := s.c.UpdateStatus(ctx, pod)
	return err
}

// DeletePod removes a pod this node has finished terminating: grace 0, and
// only the pod of that uid. Gone already, or replaced by a pod of the same
// name (the uid no longer matches), counts as done.
func (s apiStatus) DeletePod(ctx context.Context, pod *api.Pod) error {
	grace := int64(0)
	uid := pod.UID
	_, err := s.c.DeleteWithOptions(ctx, "Pod", pod.Namespace, pod.Name, api.DeleteOptions{
		GracePeriodSeconds: &grace,
		Preconditions:      &api.Preconditions{UID: &uid},
	})
	if api.IsNotFound(err) || api.IsConflict(err) {
		return nil
	}
	return err
}

// servePodHost routes a pod's log, exec, attach and portforward requests
// to the agent that runs the pod: handled here when it is this node, else
// proxied to the node's API address (from its Node object), WebSocket and
// SPDY upgrades included (httputil.ReverseProxy relays a 101 and then both
// directions of the connection).
func (a *Agent) servePodHost(sub string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns, name := r.PathValue("ns"), r.PathValue("name")
		serveHere := r.Header.Get(apiserver.ForwardedHeader) != "" // another agent looked the pod up and sent it here
		node := a.cfg.NodeName
		if !serveHere {
			// A linearizable read: this agent's replica may lag (a voter
			// just promoted is still receiving its snapshot).
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			obj, err := a.client.Get(ctx, "Pod", ns, name)
			cancel()
			if err != nil {
				metrics.MarkLocal(w)
				a.server.WriteError(w, r, a.server.ToStatus(err, mustKind("Pod"), name))
				return
			}
			node = obj.(*api.Pod).Spec.NodeName
			if node == "" {
				metrics.MarkLocal(w)
				a.server.WriteError(w, r, api.NewBadRequest("pod %q is not bound to a node yet", name))
				return
			}
		}
		if node == a.cfg.NodeName {
			metrics.MarkLocal(w)
			loop := a.host.loop.Load()
			if loop == nil {
				a.server.WriteError(w, r, api.NewServiceUnavailable("this agent does not run pods (yet)"))
				return
			}
			switch sub {
			case "log":
				loop.LogHandler().ServeHTTP(w, r)
			case "exec":
				loop.ExecHandler().ServeHTTP(w, r)
			case "attach":
				loop.AttachHandler().ServeHTTP(w, r)
			case "portforward":
				loop.PortForwardHandler().ServeHTTP(w, r)
			}
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		nobj, err := a.client.Get(ctx, "Node", "", node)
		cancel()
		if err != nil {
			a.server.WriteError(w, r, a.server.ToStatus(err, mustKind("Node"), node))
			return
		}
		target := nobj.(*api.Node).Status.Endpoints.API
		if target == "" {
			a.server.WriteError(w, r, api.NewServiceUnavailable(fmt.Sprintf("node %s has no API address", node)))
			return
		}
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(&url.URL{Scheme: a.scheme(), Host: target})
				pr.Out.Header.Set(apiserver.ForwardedHeader, a.cfg.NodeName)
			},
			Transport:     a.peerTr,
			FlushInterval: -1,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				a.server.WriteError(w, r, api.NewServiceUnavailable(fmt.Sprintf("node %s (%s) cannot be reached: %v", node, target, err)))
			},
		}
		proxy.ServeHTTP(w, r)
	})
}

func mustKind(kind string) api.KindInfo {
	k, _ := api.LookupKind(kind)
	return k
}
