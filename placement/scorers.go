package placement

import "github.com/shoal-dev/shoal/api"

// MaxScore is the best score one scorer gives a node; the worst is 0. Scores
// are integers so that a placement never depends on float rounding.
const MaxScore = 1000

// A scorer ranks the feasible nodes for a pod. The scheduler sums
// weight × score over its scorers and takes the highest sum; equal sums go
// to the node whose name sorts first.
type scorer interface {
	Name() string
	// Score rates node n for pod p, from 0 to MaxScore.
	Score(p *podInfo, n *nodeInfo) int64
}

type weightedScorer struct {
	scorer
	weight int64
}

// Scorer weights. Zone spread is not among them: it is not a weight but the
// step before scoring, which narrows the candidates to the zones holding the
// fewest pods of the pod's owner (see scheduler.go). Inside those zones:
//
//   - node spread, weight 2: a node already running one pod of the owner
//     loses 2×500 = 1000 points against an empty one, as much as the whole
//     range of the resource scorer, so replicas go to distinct nodes unless
//     the node without one is full or nearly so;
//   - least-allocated or bin-pack, weight 1: how much cpu and memory the
//     node would have left (or use) after the pod;
//   - preferred node affinity, weight 1: the share of the pod's preferred
//     terms' weight that the node matches.
const (
	weightNodeSpread   = 2
	weightResources    = 1
	weightPreferAffine = 1
)

// nodeSpread prefers nodes that run fewer pods of the same owner:
// MaxScore / (1 + count).
type nodeSpread struct{}

func (nodeSpread) Name() string { return "NodeSpread" }
func (nodeSpread) Score(p *podInfo, n *nodeInfo) int64 {
	if p.owner == nil {
		return MaxScore
	}
	return MaxScore / (1 + int64(p.owner.node[n.idx]))
}

// leastAllocated prefers the node with the most cpu and memory free after
// the pod lands: the mean over both of free/allocatable. It spreads load.
type leastAllocated struct{}

func (leastAllocated) Name() string { return "LeastAllocated" }
func (leastAllocated) Score(p *podInfo, n *nodeInfo) int64 {
	return (freeShare(n.scoreUsed.MilliCPU+p.scoreReq.MilliCPU, n.alloc.MilliCPU) +
		freeShare(n.scoreUsed.Memory+p.scoreReq.Memory, n.alloc.Memory)) / 2
}

func freeShare(used, alloc int64) int64 {
	if alloc <= 0 || used >= alloc {
		return 0
	}
	return (alloc - used) * MaxScore / alloc
}

// binPack prefers the node with the least cpu and memory free after the pod
// lands: the mean over both of requested/allocatable (0 when over). It
// keeps whole nodes empty.
type binPack struct{}

func (binPack) Name() string { return "BinPack" }
func (binPack) Score(p *podInfo, n *nodeInfo) int64 {
	return (usedShare(n.scoreUsed.MilliCPU+p.scoreReq.MilliCPU, n.alloc.MilliCPU) +
		usedShare(n.scoreUsed.Memory+p.scoreReq.Memory, n.alloc.Memory)) / 2
}

func usedShare(used, alloc int64) int64 {
	if alloc <= 0 || used > alloc {
		return 0
	}
	return used * MaxScore / alloc
}

// preferredAffinity scores the weight of the pod's preferred node-affinity
// terms that the node matches, as a share of their total weight. The
// scheduler computes it once per pod shape and node (podProfile.pref).
type preferredAffinity struct{}

func (preferredAffinity) Name() string { return "PreferredNodeAffinity" }
func (preferredAffinity) Score(p *podInfo, n *nodeInfo) int64 {
	if p.prof.pref == nil {
		return 0
	}
	return int64(p.prof.pref[n.idx])
}

// preferredScore computes preferredAffinity's score of one node from the
// terms; terms without expressions or with a weight below 1 count for
// nothing (Kubernetes treats an empty preference as a no-op).
func preferredScore(terms []api.PreferredSchedulingTerm, labels map[string]string) int64 {
	var total, got int64
	for i := range terms {
		t := &terms[i]
		if t.Weight <= 0 || len(t.Preference.MatchExpressions) == 0 {
			continue
		}
		total += int64(t.Weight)
		if termMatches(&t.Preference, labels) {
			got += int64(t.Weight)
		}
	}
	if total == 0 {
		return 0
	}
	return got * MaxScore / total
}

// preferredTerms returns the pod's preferred node-affinity terms, or nil
// when none of them counts.
func preferredTerms(pod *api.Pod) []api.PreferredSchedulingTerm {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil {
		return nil
	}
	for _, t := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		if t.Weight > 0 && len(t.Preference.MatchExpressions) > 0 {
			return a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution
		}
	}
	return nil
}
