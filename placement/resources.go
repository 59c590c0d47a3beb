package placement

import "github.com/shoal-dev/shoal/api"

// Resources is an amount of the resources the scheduler accounts for: cpu in
// thousandths of a core, memory in bytes, and a pod count.
type Resources struct {
	MilliCPU int64
	Memory   int64
	Pods     int64
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{r.MilliCPU + o.MilliCPU, r.Memory + o.Memory, r.Pods + o.Pods}
}

// Sub returns r - o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{r.MilliCPU - o.MilliCPU, r.Memory - o.Memory, r.Pods - o.Pods}
}

// DefaultMaxPods is a node's pod limit when neither its allocatable nor its
// capacity says (the kubelet's default).
const DefaultMaxPods = 110

// Requests the least-allocated and bin-pack scorers assume for a container
// that requests nothing, so that pods without requests still spread by load
// (kube-scheduler does the same). Filters never use them: a pod that
// requests nothing fits on any node with a free pod slot.
const (
	scoringDefaultMilliCPU = 100
	scoringDefaultMemory   = 200 << 20
)

// PodRequests returns what a pod asks of its node, the way Kubernetes counts
// it: for cpu and memory, the larger of the sum over the regular containers
// and the largest single init container (init containers run one at a time,
// before the others); a container that sets a limit but no request requests
// its limit. Pods is 1. An unparsable quantity counts as zero (validation
// rejects it before it reaches the store).
func PodRequests(pod *api.Pod) Resources {
	return podRequests(pod, nil)
}

// NodeAllocatable returns what a node offers to pods: status.allocatable,
// falling back per resource to status.capacity; a node that states neither
// offers no cpu or memory and DefaultMaxPods pods.
func NodeAllocatable(node *api.Node) Resources {
	return nodeAllocatable(node, nil)
}

func podRequests(pod *api.Pod, qc *quantityCache) Resources {
	var sum Resources
	for i := range pod.Spec.Containers {
		sum = sum.Add(containerRequests(&pod.Spec.Containers[i], qc))
	}
	for i := range pod.Spec.InitContainers {
		c := containerRequests(&pod.Spec.InitContainers[i], qc)
		sum.MilliCPU = max(sum.MilliCPU, c.MilliCPU)
		sum.Memory = max(sum.Memory, c.Memory)
	}
	sum.Pods = 1
	return sum
}

func containerRequests(c *api.Container, qc *quantityCache) Resources {
	get := func(name string, milli bool) int64 {
		q, ok := c.Resources.Requests[name]
		if !ok {
			q, ok = c.Resources.Limits[name]
		}
		if !ok {
			return 0
		}
		return qc.parse(q, milli)
	}
	return Resources{MilliCPU: get(api.ResourceCPU, true), Memory: get(api.ResourceMemory, false)}
}

func nodeAllocatable(node *api.Node, qc *quantityCache) Resources {
	get := func(name string, milli bool, def int64) int64 {
		q, ok := node.Status.Allocatable[name]
		if !ok {
			q, ok = node.Status.Capacity[name]
		}
		if !ok {
			return def
		}
		return qc.parse(q, milli)
	}
	return Resources{
		MilliCPU: get(api.ResourceCPU, true, 0),
		Memory:   get(api.ResourceMemory, false, 0),
		Pods:     get(api.ResourcePods, false, DefaultMaxPods),
	}
}

// scoringRequests is r with the scoring defaults in place of zero cpu or
// memory.
func scoringRequests(r Resources) Resources {
	if r.MilliCPU == 0 {
		r.MilliCPU = scoringDefaultMilliCPU
	}
	if r.Memory == 0 {
		r.Memory = scoringDefaultMemory
	}
	return r
}

// quantityCache remembers parsed quantities: parsing goes through big.Rat
// and costs about a microsecond, while the pods of one workload repeat the
// same few strings. A nil cache parses every time.
type quantityCache struct {
	milli, value map[api.Quantity]int64
}

func newQuantityCache() *quantityCache {
	return &quantityCache{milli: map[api.Quantity]int64{}, value: map[api.Quantity]int64{}}
}

// maxCachedQuantities bounds the cache; past it the cache starts over.
const maxCachedQuantities = 4096

func (qc *quantityCache) parse(q api.Quantity, milli bool) int64 {
	if qc == nil {
		return parseQuantity(q, milli)
	}
	m := qc.value
	if milli {
		m = qc.milli
	}
	if v, ok := m[q]; ok {
		return v
	}
	v := parseQuantity(q, milli)
	if len(m) >= maxCachedQuantities {
		clear(m)
	}
	m[q] = v
	return v
}

func parseQuantity(q api.Quantity, milli bool) int64 {
	var v int64
	var err error
	if milli {
		v, err = q.MilliValue()
	} else {
		v, err = q.Value()
	}
	if err != nil {
		return 0
	}
	return v
}
