package placement

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// The benchmarks have the shape of Nomad's scheduler/benchmarks
// BenchmarkServiceScheduler: one ReplicaSet of 1,200 pods placedPod on 500,
// 1,000 and 5,000 nodes spread over 25 zones, with zone spread on and off.
// Each iteration builds the scheduler from the nodes (untimed, like Nomad's
// state store setup) and places the 1,200 pods one after the other (timed,
// including the first pod's podProfile pass over every node).
//
//	go test -run '^$' -bench 'Schedule' -benchtime 20x ./placement/

const (
	benchPods  = 1200
	benchZones = 25
)

var benchNodeCounts = []int{500, 1000, 5000}

func benchCluster(nodes int) []*api.Node {
	out := make([]*api.Node, nodes)
	for i := range out {
		out[i] = &api.Node{
			ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("node-%05d", i), Labels: map[string]string{
				DefaultZoneLabel: fmt.Sprintf("zone-%02d", i%benchZones),
			}},
			Status: api.NodeStatus{
				Allocatable: api.ResourceList{api.ResourceCPU: "8", api.ResourceMemory: "32Gi", api.ResourcePods: "110"},
				Conditions:  []api.Condition{{Type: api.NodeReady, Status: api.ConditionTrue}},
			},
		}
	}
	return out
}

func benchReplicaSet() []*api.Pod {
	ctrl := true
	out := make([]*api.Pod, benchPods)
	for i := range out {
		out[i] = &api.Pod{
			ObjectMeta: api.ObjectMeta{
				Name: fmt.Sprintf("web-%05d", i), Namespace: "default", Labels: map[string]string{"app": "web"},
				OwnerReferences: []api.OwnerReference{{Kind: "ReplicaSet", Name: "web", UID: "rs-web", Controller: &ctrl}},
			},
			Spec: api.PodSpec{Containers: []api.Container{{Name: "web", Image: "web:1",
				Resources: api.ResourceRequirements{Requests: api.ResourceList{api.ResourceCPU: "100m", api.ResourceMemory: "128Mi"}}}}},
		}
	}
	return out
}

func spreadName(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func BenchmarkSchedule(b *testing.B) {
	pods := benchReplicaSet()
	for _, n := range benchNodeCounts {
		nodes := benchCluster(n)
		for _, spread := range []bool{true, false} {
			b.Run(fmt.Sprintf("nodes=%d/spread=%s", n, spreadName(spread)), func(b *testing.B) {
				benchScheduler(b, SchedulerConfig{DisableSpread: !spread}, nodes, pods)
			})
		}
		// Every feasible node scored: what sampling saves.
		b.Run(fmt.Sprintf("nodes=%d/spread=on/sample=all", n), func(b *testing.B) {
			benchScheduler(b, SchedulerConfig{SamplePercent: 100}, nodes, pods)
		})
	}
}

func benchScheduler(b *testing.B, cfg SchedulerConfig, nodes []*api.Node, pods []*api.Pod) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := NewScheduler(cfg, nodes, nil)
		b.StartTimer()
		for _, p := range pods {
			if node, ex := s.Schedule(p); node == "" {
				b.Fatalf("unschedulable: %s", ex)
			}
		}
	}
	b.ReportMetric(float64(benchPods*b.N)/b.Elapsed().Seconds(), "placements/s")
}

// BenchmarkScheduleVsNaive runs, in each iteration, the scheduler and the
// naive one below on the same input and reports both rates and their ratio.
func BenchmarkScheduleVsNaive(b *testing.B) {
	pods := benchReplicaSet()
	for _, n := range benchNodeCounts {
		nodes := benchCluster(n)
		for _, spread := range []bool{true, false} {
			b.Run(fmt.Sprintf("nodes=%d/spread=%s", n, spreadName(spread)), func(b *testing.B) {
				cfg := SchedulerConfig{DisableSpread: !spread}
				var fast, slow time.Duration
				for i := 0; i < b.N; i++ {
					s := NewScheduler(cfg, nodes, nil)
					t0 := time.Now()
					for _, p := range pods {
						s.Schedule(p)
					}
					t1 := time.Now()
					naiveSchedule(cfg, nodes, pods)
					fast, slow = fast+t1.Sub(t0), slow+time.Since(t1)
				}
				b.ReportMetric(float64(benchPods*b.N)/fast.Seconds(), "placements/s")
				b.ReportMetric(float64(benchPods*b.N)/slow.Seconds(), "naive-placements/s")
				b.ReportMetric(slow.Seconds()/fast.Seconds(), "x-naive")
			})
		}
	}
}

// naiveSchedule is the baseline: for every pod it runs every filter on every
// node and scores every feasible node (zone spread as a heavy score term,
// then node spread and least-allocated with the same weights), keeping the
// owner counts in maps. O(nodes) filter and score work per pod.
func naiveSchedule(cfg SchedulerConfig, apiNodes []*api.Node, pods []*api.Pod) []string {
	cfg = cfg.withDefaults()
	nodes := make([]nodeInfo, len(apiNodes))
	for i, n := range apiNodes {
		nodes[i] = nodeInfo{node: n, idx: int32(i), alloc: NodeAllocatable(n)}
	}
	zoneCount := map[string]map[string]int{} // owner → zone → pods
	nodeCount := map[string]map[string]int{} // owner → node → pods
	out := make([]string, len(pods))
	filters := append(append([]filter{}, staticFilters...), dynamicFilters...)
	for k, pod := range pods {
		req := PodRequests(pod)
		p := &podInfo{pod: pod, req: req, scoreReq: scoringRequests(req), prof: &podProfile{}}
		owner := spreadKey(pod)
		if zoneCount[owner] == nil {
			zoneCount[owner], nodeCount[owner] = map[string]int{}, map[string]int{}
		}
		best, bestScore := -1, int64(0)
	nodes:
		for i := range nodes {
			n := &nodes[i]
			for _, f := range filters {
				if f.Reject(p, n) != "" {
					continue nodes
				}
			}
			sc := leastAllocated{}.Score(p, n) + preferredScore(nil, n.node.Labels)
			if !cfg.DisableSpread {
				sc += weightNodeSpread * MaxScore / (1 + int64(nodeCount[owner][n.node.Name]))
				sc -= 1_000_000 * int64(zoneCount[owner][n.node.Labels[cfg.ZoneLabel]])
			}
			if best < 0 || sc > bestScore {
				best, bestScore = i, sc
			}
		}
		if best < 0 {
			continue
		}
		n := &nodes[best]
		n.used, n.scoreUsed = n.used.Add(req), n.scoreUsed.Add(p.scoreReq)
		zoneCount[owner][n.node.Labels[cfg.ZoneLabel]]++
		nodeCount[owner][n.node.Name]++
		out[k] = n.node.Name
	}
	return out
}
