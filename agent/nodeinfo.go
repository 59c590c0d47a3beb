package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

// HostFacts is what the agent learns about its host for its Node object.
type HostFacts struct {
	CPUs          int
	MemoryBytes   int64
	Hostname      string
	KernelVersion string
	OSImage       string
	Architecture  string
	MachineID     string
}

// ReadHostFacts reads the host's facts from /proc and /etc. Only the
// memory size is required; a missing os-release or machine-id leaves its
// field empty.
func ReadHostFacts() (HostFacts, error) {
	f, err := readHostFacts(os.DirFS("/"), runtime.NumCPU())
	if f.Hostname == "" {
		f.Hostname, _ = os.Hostname()
	}
	return f, err
}

// readHostFacts reads the facts below root, a view of "/".
func readHostFacts(root fs.FS, cpus int) (HostFacts, error) {
	f := HostFacts{CPUs: cpus, Architecture: runtime.GOARCH}
	mem, err := fs.ReadFile(root, "proc/meminfo")
	if err != nil {
		return f, fmt.Errorf("host facts: %w", err)
	}
	if f.MemoryBytes, err = memTotal(mem); err != nil {
		return f, fmt.Errorf("host facts: /proc/meminfo: %w", err)
	}
	firstLine := func(name string) string {
		b, err := fs.ReadFile(root, name)
		if err != nil {
			return ""
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimSpace(line)
	}
	f.KernelVersion = firstLine("proc/sys/kernel/osrelease")
	f.Hostname = strings.ToLower(firstLine("proc/sys/kernel/hostname"))
	f.MachineID = firstLine("etc/machine-id")
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		if b, err := fs.ReadFile(root, p); err == nil {
			f.OSImage = osReleaseValue(b, "PRETTY_NAME")
			break
		}
	}
	return f, nil
}

// memTotal returns MemTotal of /proc/meminfo in bytes.
func memTotal(meminfo []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != "MemTotal" {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			break
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("MemTotal %q is not a positive number", v)
		}
		if len(fields) > 1 && fields[1] != "kB" {
			return 0, fmt.Errorf("MemTotal in unknown unit %q", fields[1])
		}
		return n * 1024, nil
	}
	return 0, errors.New("no MemTotal line")
}

// osReleaseValue returns the value of key in an os-release file, unquoted.
func osReleaseValue(b []byte, key string) string {
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || k != key {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			return uq
		}
		return strings.Trim(v, `"'`)
	}
	return ""
}

// Well-known Node labels.
const (
	LabelHostname = "kubernetes.io/hostname"
	LabelZone     = "topology.kubernetes.io/zone"
	LabelArch     = "kubernetes.io/arch"
	LabelOS       = "kubernetes.io/os"
	// LabelRolePrefix + role ("voter", "nonvoter", "worker") marks the
	// agent's current role, with an empty value.
	LabelRolePrefix = "node-role.shoal.dev/"
)

// TaintNoPods marks the Node of an agent that runs no pods (--pods=false):
// the scheduler places nothing there and DaemonSets skip it.
const TaintNoPods = api.TaintNoPods

// DefaultMaxPods is the pods capacity of a node unless configured.
const DefaultMaxPods = 110

// NodeInputs is what the agent's configuration adds to the host facts.
type NodeInputs struct {
	Labels     map[string]string // from --label k=v
	Zone       string
	InternalIP string
	APIAddr    string // host:port of the agent's API
	RaftAddr   string // host:port of its Raft transport
	Role       string // api.RoleVoter, api.RoleNonvoter or api.RoleWorker
	MaxPods    int    // 0 means DefaultMaxPods
	Version    string // the agent's version, for status.nodeInfo
	NoPods     bool   // the agent runs no pods: taint TaintNoPods
}

// BuildNode returns the Node object an agent registers for its host. Its
// status carries capacity (allocatable is the same: nothing is reserved
// yet), addresses, system info, role and daemon endpoints; it has no
// conditions (the leader derives Ready from gossip) and an empty spec (the
// leader assigns the pod CIDR, operators set taints).
func BuildNode(name string, f HostFacts, in NodeInputs) *api.Node {
	maxPods := in.MaxPods
	if maxPods <= 0 {
		maxPods = DefaultMaxPods
	}
	labels := maps.Clone(in.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	hostname := f.Hostname
	if hostname == "" {
		hostname = name
	}
	labels[LabelHostname] = hostname
	labels[LabelArch] = f.Architecture
	labels[LabelOS] = runtime.GOOS
	if in.Zone != "" {
		labels[LabelZone] = in.Zone
	}
	if in.Role != "" {
		labels[LabelRolePrefix+in.Role] = ""
	}
	if f.Architecture == "" {
		delete(labels, LabelArch)
	}
	capacity := api.ResourceList{
		"cpu":    api.Quantity(strconv.Itoa(f.CPUs)),
		"memory": api.Quantity(strconv.FormatInt(f.MemoryBytes/1024, 10) + "Ki"),
		"pods":   api.Quantity(strconv.Itoa(maxPods)),
	}
	var addrs []api.NodeAddress
	if in.InternalIP != "" {
		addrs = append(addrs, api.NodeAddress{Type: "InternalIP", Address: in.InternalIP})
	}
	addrs = append(addrs, api.NodeAddress{Type: "Hostname", Address: hostname})
	n := &api.Node{
		ObjectMeta: api.ObjectMeta{Name: name, Labels: labels},
		Status: api.NodeStatus{
			Capacity:    capacity,
			Allocatable: maps.Clone(capacity),
			Addresses:   addrs,
			NodeInfo: api.NodeSystemInfo{
				MachineID:       f.MachineID,
				KernelVersion:   f.KernelVersion,
				OSImage:         f.OSImage,
				AgentVersion:    in.Version,
				OperatingSystem: runtime.GOOS,
				Architecture:    f.Architecture,
			},
			Role:      in.Role,
			Endpoints: api.NodeDaemonPorts{API: in.APIAddr, Raft: in.RaftAddr},
		},
	}
	if in.NoPods {
		n.Spec.Taints = []api.Taint{{Key: TaintNoPods, Effect: api.TaintNoSchedule}}
	}
	api.SetTypeMeta(n)
	return n
}

// MergeNode returns what to write so that current (the stored Node) says
// what want (from BuildNode) says, keeping what others own: the spec, the
// conditions, and labels that are not the agent's. Labels want sets win;
// role labels of a former role are removed. metaChanged means an Update is
// due (labels), statusChanged an UpdateStatus. With current nil, it is want.
func MergeNode(current, want *api.Node) (out *api.Node, metaChanged, statusChanged bool) {
	if current == nil {
		return want.DeepCopyObject().(*api.Node), true, true
	}
	out = current.DeepCopyObject().(*api.Node)
	labels := maps.Clone(current.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	for k := range labels {
		if _, keep := want.Labels[k]; strings.HasPrefix(k, LabelRolePrefix) && !keep {
			delete(labels, k)
		}
	}
	maps.Copy(labels, want.Labels)
	out.Labels = labels
	// The no-pods taint is the agent's; other taints are the operator's.
	var ours *api.Taint
	for _, t := range want.Spec.Taints {
		if t.Key == TaintNoPods {
			ours = &t
		}
	}
	var taints []api.Taint
	for _, t := range current.Spec.Taints {
		switch {
		case t.Key != TaintNoPods:
			taints = append(taints, t)
		case ours != nil:
			taints = append(taints, *ours)
			ours = nil
		}
	}
	if ours != nil {
		taints = append(taints, *ours)
	}
	if len(taints) == 0 {
		taints = nil
	}
	out.Spec.Taints = taints
	conds := out.Status.Conditions
	out.Status = want.Status
	out.Status.Capacity = maps.Clone(want.Status.Capacity)
	out.Status.Allocatable = maps.Clone(want.Status.Allocatable)
	out.Status.Addresses = append([]api.NodeAddress(nil), want.Status.Addresses...)
	out.Status.Conditions = conds
	metaChanged = !maps.Equal(labels, current.Labels) || !reflect.DeepEqual(out.Spec.Taints, current.Spec.Taints)
	statusChanged = !reflect.DeepEqual(out.Status, current.Status)
	return out, metaChanged, statusChanged
}
