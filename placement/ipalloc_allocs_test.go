package placement

import (
	"fmt"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// The ClusterIP controller runs AllocateClusterIPs over every Service on
// each pass; with nothing to allocate, a pass allocates a fixed handful of
// times, not once or more per Service (a name and a map entry each, which
// were most of the agent's allocation while 10,000 Services were loaded).
func TestAllocateClusterIPsSteadyPassAllocs(t *testing.T) {
	const n = 4000
	svcs := make([]*api.Service, n)
	for i := range svcs {
		svcs[i] = &api.Service{
			ObjectMeta: api.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("s-%05d", i)},
			Spec: api.ServiceSpec{ClusterIP: fmt.Sprintf("10.96.%d.%d", 1+i/250, 1+i%250),
				Ports: []api.ServicePort{{Port: 80}}},
		}
	}
	if p := AllocateClusterIPs("10.96.0.0/12", svcs); len(p.Update) != 0 || len(p.Events) != 0 {
		t.Fatalf("steady pass planned %d updates, events %v", len(p.Update), p.Events)
	}
	allocs := testing.AllocsPerRun(5, func() { AllocateClusterIPs("10.96.0.0/12", svcs) })
	if allocs > 64 {
		t.Fatalf("a pass over %d Services with nothing to do allocated %.0f times, want ≤ 64", n, allocs)
	}
}
