package placement

import (
	"testing"

	"github.com/shoal-dev/shoal/api"
)

func TestPodRequests(t *testing.T) {
	c := func(req, lim api.ResourceList) api.Container {
		return api.Container{Name: "c", Image: "i", Resources: api.ResourceRequirements{Requests: req, Limits: lim}}
	}
	rl := func(cpu, mem string) api.ResourceList {
		l := api.ResourceList{}
		if cpu != "" {
			l[api.ResourceCPU] = api.Quantity(cpu)
		}
		if mem != "" {
			l[api.ResourceMemory] = api.Quantity(mem)
		}
		return l
	}
	cases := []struct {
		name       string
		containers []api.Container
		inits      []api.Container
		want       Resources
	}{
		{"nothing", []api.Container{c(nil, nil)}, nil, Resources{Pods: 1}},
		{"requests summed", []api.Container{c(rl("250m", "64Mi"), nil), c(rl("1", "1Gi"), nil)}, nil,
			Resources{MilliCPU: 1250, Memory: 64<<20 + 1<<30, Pods: 1}},
		{"limits stand in for missing requests", []api.Container{c(nil, rl("2", "1Gi"))}, nil, Resources{MilliCPU: 2000, Memory: 1 << 30, Pods: 1}},
		{"per resource", []api.Container{c(rl("100m", ""), rl("2", "1Gi"))}, nil, Resources{MilliCPU: 100, Memory: 1 << 30, Pods: 1}},
		{"init larger than the sum", []api.Container{c(rl("100m", "10Mi"), nil), c(rl("100m", "10Mi"), nil)},
			[]api.Container{c(rl("1", "1Mi"), nil)}, Resources{MilliCPU: 1000, Memory: 20 << 20, Pods: 1}},
		{"max over inits, not their sum", []api.Container{c(rl("100m", ""), nil)},
			[]api.Container{c(rl("300m", ""), nil), c(rl("400m", ""), nil)}, Resources{MilliCPU: 400, Pods: 1}},
		{"unparsable counts as zero", []api.Container{c(rl("lots", "1Ki"), nil)}, nil, Resources{Memory: 1024, Pods: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &api.Pod{Spec: api.PodSpec{Containers: tc.containers, InitContainers: tc.inits}}
			if got := PodRequests(pod); got != tc.want {
				t.Errorf("PodRequests = %+v, want %+v", got, tc.want)
			}
			if got := podRequests(pod, newQuantityCache()); got != tc.want {
				t.Errorf("cached = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNodeAllocatable(t *testing.T) {
	cases := []struct {
		name        string
		alloc, capa api.ResourceList
		want        Resources
	}{
		{"allocatable", api.ResourceList{"cpu": "4", "memory": "8Gi", "pods": "50"}, api.ResourceList{"cpu": "8"},
			Resources{4000, 8 << 30, 50}},
		{"capacity fills gaps", api.ResourceList{"cpu": "3500m"}, api.ResourceList{"cpu": "4", "memory": "1G", "pods": "20"},
			Resources{3500, 1e9, 20}},
		{"nothing stated", nil, nil, Resources{0, 0, DefaultMaxPods}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := &api.Node{Status: api.NodeStatus{Allocatable: tc.alloc, Capacity: tc.capa}}
			if got := NodeAllocatable(n); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
