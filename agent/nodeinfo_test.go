package agent

import (
	"runtime"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shoal-dev/shoal/api"
)

func hostFS() fstest.MapFS {
	return fstest.MapFS{
		"proc/meminfo":              {Data: []byte("MemTotal:       16314512 kB\nMemFree:         1234 kB\n")},
		"proc/sys/kernel/osrelease": {Data: []byte("6.8.0-45-generic\n")},
		"proc/sys/kernel/hostname":  {Data: []byte("Host-1\n")},
		"etc/os-release":            {Data: []byte("NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n")},
		"etc/machine-id":            {Data: []byte("0123456789abcdef0123456789abcdef\n")},
	}
}

func TestReadHostFacts(t *testing.T) {
	f, err := readHostFacts(hostFS(), 8)
	if err != nil {
		t.Fatal(err)
	}
	want := HostFacts{CPUs: 8, MemoryBytes: 16314512 * 1024, Hostname: "host-1", KernelVersion: "6.8.0-45-generic",
		OSImage: "Debian GNU/Linux 12 (bookworm)", Architecture: runtime.GOARCH, MachineID: "0123456789abcdef0123456789abcdef"}
	if f != want {
		t.Fatalf("got  %+v\nwant %+v", f, want)
	}

	// Optional files may be missing; os-release falls back to /usr/lib.
	fsys := hostFS()
	delete(fsys, "etc/machine-id")
	delete(fsys, "etc/os-release")
	fsys["usr/lib/os-release"] = &fstest.MapFile{Data: []byte("PRETTY_NAME='Alpine Linux v3.20'\n")}
	f, err = readHostFacts(fsys, 1)
	if err != nil || f.MachineID != "" || f.OSImage != "Alpine Linux v3.20" {
		t.Fatalf("%+v, %v", f, err)
	}

	// Memory is required.
	for _, bad := range []string{"", "MemTotal: x kB\n", "MemTotal: 12 MB\n", "MemTotal:\n"} {
		fsys := hostFS()
		fsys["proc/meminfo"] = &fstest.MapFile{Data: []byte(bad)}
		if _, err := readHostFacts(fsys, 1); err == nil {
			t.Errorf("meminfo %q: no error", bad)
		}
	}
	delete(fsys, "proc/meminfo")
	if _, err := readHostFacts(fsys, 1); err == nil {
		t.Error("no meminfo: no error")
	}
}

func TestReadHostFactsOnThisHost(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	f, err := ReadHostFacts()
	if err != nil {
		t.Fatal(err)
	}
	if f.CPUs < 1 || f.MemoryBytes <= 0 || f.Hostname == "" || f.KernelVersion == "" {
		t.Fatalf("%+v", f)
	}
}

func TestBuildNode(t *testing.T) {
	facts, err := readHostFacts(hostFS(), 4)
	if err != nil {
		t.Fatal(err)
	}
	n := BuildNode("host-1", facts, NodeInputs{
		Labels:     map[string]string{"disk": "ssd"},
		Zone:       "eu-1a",
		InternalIP: "10.0.0.5",
		APIAddr:    "10.0.0.5:7070",
		RaftAddr:   "10.0.0.5:7071",
		Role:       api.RoleVoter,
		Version:    "v0.1.0",
	})
	if errs := api.Validate(n); errs != nil {
		t.Fatalf("invalid node: %v", errs)
	}
	if n.Kind != "Node" || n.APIVersion != "v1" {
		t.Errorf("type meta %+v", n.TypeMeta)
	}
	wantLabels := map[string]string{
		"disk": "ssd", LabelHostname: "host-1", LabelZone: "eu-1a",
		LabelRolePrefix + "voter": "", LabelArch: runtime.GOARCH, LabelOS: runtime.GOOS,
	}
	if len(n.Labels) != len(wantLabels) {
		t.Errorf("labels %v, want %v", n.Labels, wantLabels)
	}
	for k, v := range wantLabels {
		if got, ok := n.Labels[k]; !ok || got != v {
			t.Errorf("label %s = %q (%v), want %q", k, got, ok, v)
		}
	}
	for _, rl := range []api.ResourceList{n.Status.Capacity, n.Status.Allocatable} {
		if rl["cpu"] != "4" || rl["memory"] != "16314512Ki" || rl["pods"] != "110" {
			t.Errorf("resources %v", rl)
		}
		if v, err := rl["memory"].Value(); err != nil || v != 16314512*1024 {
			t.Errorf("memory quantity = %d, %v", v, err)
		}
	}
	if len(n.Status.Addresses) != 2 || n.Status.Addresses[0] != (api.NodeAddress{Type: "InternalIP", Address: "10.0.0.5"}) ||
		n.Status.Addresses[1] != (api.NodeAddress{Type: "Hostname", Address: "host-1"}) {
		t.Errorf("addresses %v", n.Status.Addresses)
	}
	if n.Status.Role != api.RoleVoter || n.Status.Endpoints.API != "10.0.0.5:7070" || n.Status.Endpoints.Raft != "10.0.0.5:7071" {
		t.Errorf("role/endpoints %q %+v", n.Status.Role, n.Status.Endpoints)
	}
	if ni := n.Status.NodeInfo; ni.KernelVersion != "6.8.0-45-generic" || ni.AgentVersion != "v0.1.0" || ni.MachineID == "" {
		t.Errorf("nodeInfo %+v", ni)
	}
	if len(n.Status.Conditions) != 0 {
		t.Errorf("conditions %v: the leader owns Ready", n.Status.Conditions)
	}

	// Defaults: no zone label without a zone, MaxPods honoured, the input
	// map not modified.
	in := map[string]string{"a": "b"}
	n = BuildNode("w", HostFacts{CPUs: 1, MemoryBytes: 1 << 30}, NodeInputs{Labels: in, MaxPods: 20, Role: api.RoleWorker})
	if _, ok := n.Labels[LabelZone]; ok {
		t.Error("zone label without a zone")
	}
	if n.Labels[LabelHostname] != "w" || n.Status.Capacity["pods"] != "20" || len(in) != 1 {
		t.Errorf("labels %v capacity %v input %v", n.Labels, n.Status.Capacity, in)
	}
	if errs := api.Validate(n); errs != nil {
		t.Fatalf("invalid node: %v", errs)
	}
}

func TestMergeNode(t *testing.T) {
	facts := HostFacts{CPUs: 2, MemoryBytes: 4 << 30, Hostname: "h", Architecture: "amd64"}
	want := BuildNode("h", facts, NodeInputs{Role: api.RoleNonvoter})

	out, meta, status := MergeNode(nil, want)
	if !meta || !status || out == want {
		t.Fatalf("create: %v %v", meta, status)
	}

	// The stored node: someone labelled it, the leader set Ready and a pod
	// CIDR.
	stored := want.DeepCopyObject().(*api.Node)
	stored.Labels["team"] = "a"
	stored.Spec.PodCIDR = "10.244.1.0/24"
	stored.Status.Conditions = []api.Condition{{Type: api.NodeReady, Status: api.ConditionTrue,
		LastTransitionTime: api.NewTime(time.Unix(100, 0))}}
	stored.ResourceVersion = "7"

	if _, meta, status := MergeNode(stored, want); meta || status {
		t.Fatalf("nothing changed, yet meta=%v status=%v", meta, status)
	}

	// Promoted to voter, with more memory.
	facts.MemoryBytes = 8 << 30
	want = BuildNode("h", facts, NodeInputs{Role: api.RoleVoter})
	out, meta, status = MergeNode(stored, want)
	if !meta || !status {
		t.Fatalf("role change: meta=%v status=%v", meta, status)
	}
	if _, ok := out.Labels[LabelRolePrefix+"nonvoter"]; ok {
		t.Error("the old role label stayed")
	}
	if _, ok := out.Labels[LabelRolePrefix+"voter"]; !ok || out.Labels["team"] != "a" {
		t.Errorf("labels %v", out.Labels)
	}
	if out.Spec.PodCIDR != "10.244.1.0/24" || len(out.Status.Conditions) != 1 || out.ResourceVersion != "7" {
		t.Errorf("lost what others own: %+v", out)
	}
	if out.Status.Role != api.RoleVoter || out.Status.Capacity["memory"] != "8388608Ki" {
		t.Errorf("status %+v", out.Status)
	}
	if stored.Status.Role != api.RoleNonvoter {
		t.Error("MergeNode modified its input")
	}
}

// An agent that runs no pods taints its Node so that nothing is scheduled
// there; the taint follows the flag, and an operator's taints stay.
func TestNoPodsTaint(t *testing.T) {
	facts := HostFacts{CPUs: 2, MemoryBytes: 4 << 30, Hostname: "h"}
	noPods := BuildNode("h", facts, NodeInputs{Role: api.RoleVoter, NoPods: true})
	if len(noPods.Spec.Taints) != 1 || noPods.Spec.Taints[0].Key != TaintNoPods || noPods.Spec.Taints[0].Effect != api.TaintNoSchedule {
		t.Fatalf("taints %+v, want %s:NoSchedule", noPods.Spec.Taints, TaintNoPods)
	}
	stored := noPods.DeepCopyObject().(*api.Node)
	stored.Spec.Taints = append(stored.Spec.Taints, api.Taint{Key: "dedicated", Value: "db", Effect: api.TaintNoSchedule})
	if _, meta, _ := MergeNode(stored, noPods); meta {
		t.Fatal("unchanged taints rewritten")
	}
	// The agent now runs pods: its taint goes, the operator's stays.
	runs := BuildNode("h", facts, NodeInputs{Role: api.RoleVoter})
	out, meta, _ := MergeNode(stored, runs)
	if !meta || len(out.Spec.Taints) != 1 || out.Spec.Taints[0].Key != "dedicated" {
		t.Fatalf("meta=%v taints %+v, want only the operator's", meta, out.Spec.Taints)
	}
	// And back.
	out, meta, _ = MergeNode(out, noPods)
	if !meta || len(out.Spec.Taints) != 2 {
		t.Fatalf("meta=%v taints %+v, want the operator's and the agent's", meta, out.Spec.Taints)
	}
}
