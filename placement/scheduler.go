package placement

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

// Scheduling strategies: how the resource scorer ranks nodes.
const (
	// StrategyLeastAllocated prefers the node with the most room left (spreads load).
	StrategyLeastAllocated = "LeastAllocated"
	// StrategyBinPack prefers the fullest node that fits (keeps nodes empty).
	StrategyBinPack = "BinPack"
)

// DefaultZoneLabel is the node label that names a node's zone.
const DefaultZoneLabel = "topology.kubernetes.io/zone"

// Defaults of the sample the scheduler scores (see SchedulerConfig).
const (
	DefaultSampleMin     = 100
	DefaultSamplePercent = 5
)

// SchedulerConfig tunes the scheduler. The zero value means the defaults.
type SchedulerConfig struct {
	// Strategy is StrategyLeastAllocated (default, "") or StrategyBinPack.
	Strategy string
	// ZoneLabel names the node label holding the zone (default
	// DefaultZoneLabel). Nodes without it form one zone named "".
	ZoneLabel string
	// DisableSpread turns off spreading the pods of one owner across zones
	// and nodes (benchmarks; clusters that only want packing).
	DisableSpread bool
	// SampleMin and SamplePercent bound how many feasible nodes are scored
	// per pod, as kube-scheduler's percentageOfNodesToScore does: within the
	// zones chosen by spread, the scheduler stops once it has found
	// max(SampleMin, SamplePercent% of the candidates) feasible nodes,
	// starting each time where the last search of those zones stopped.
	// Defaults 100 and 5; SamplePercent 100 scores every feasible node.
	SampleMin     int
	SamplePercent int
}

// DefaultSchedulerConfig returns the defaults, spelled out.
func DefaultSchedulerConfig() SchedulerConfig {
	return SchedulerConfig{
		Strategy:      StrategyLeastAllocated,
		ZoneLabel:     DefaultZoneLabel,
		SampleMin:     DefaultSampleMin,
		SamplePercent: DefaultSamplePercent,
	}
}

// Validate reports a configuration the scheduler would not honour as
// written. NewScheduler itself never fails: it falls back to the defaults.
func (c SchedulerConfig) Validate() error {
	switch c.Strategy {
	case "", StrategyLeastAllocated, StrategyBinPack:
	default:
		return fmt.Errorf("scheduler strategy %q: want %s or %s", c.Strategy, StrategyLeastAllocated, StrategyBinPack)
	}
	if c.SampleMin < 0 {
		return fmt.Errorf("scheduler sample minimum %d: must not be negative", c.SampleMin)
	}
	if c.SamplePercent < 0 || c.SamplePercent > 100 {
		return fmt.Errorf("scheduler sample percent %d: want 0 to 100", c.SamplePercent)
	}
	return nil
}

func (c SchedulerConfig) withDefaults() SchedulerConfig {
	d := DefaultSchedulerConfig()
	if c.Strategy != StrategyBinPack {
		c.Strategy = d.Strategy
	}
	if c.ZoneLabel == "" {
		c.ZoneLabel = d.ZoneLabel
	}
	if c.SampleMin <= 0 {
		c.SampleMin = d.SampleMin
	}
	if c.SamplePercent <= 0 || c.SamplePercent > 100 {
		c.SamplePercent = d.SamplePercent
	}
	return c
}

// Scheduler places pods on nodes. It is built once from the nodes and the
// pods already bound to them, then kept in step with Schedule (which records
// its own decisions), Add and Remove. It is not safe for concurrent use.
//
// Schedule runs this pipeline for each pod (README.md has the picture):
//
//  1. Profile. The static filters (Ready, schedulable, taints, nodeSelector,
//     required affinity) depend only on the pod's spec and the nodes, so
//     they run once per distinct (nodeSelector, affinity, tolerations) and
//     the passing nodes are kept grouped by zone, with the rejection counts
//     for explanations. The pods of one ReplicaSet share one profile.
//  2. Zones. With spread on, the zones that have passing nodes are ordered
//     by how many pods of the pod's owner they hold; the zones tied at the
//     lowest count are searched first, the next tier only if nothing there
//     fits. That keeps an owner's zones within one pod of each other while
//     they have room.
//  3. Sample. Within the tier, the dynamic filters (pod count, cpu, memory)
//     run on each zone's nodes from where the last search stopped, until a
//     share of the sample proportional to the zone's size has been found.
//  4. Score. Each feasible node in the sample gets the weighted sum of the
//     scorers (node spread, least-allocated or bin-pack, preferred
//     affinity); the highest wins, ties to the lower node name.
//  5. Record. The pod's requests are added to the node and its owner's
//     counts, so the next pod of the batch sees them.
type Scheduler struct {
	cfg      SchedulerConfig
	spread   bool
	nodes    []nodeInfo // sorted by name; an index is a node's identity
	byName   map[string]int32
	zones    []string // sorted
	owners   map[string]*ownerCounts
	pods     map[string]placedPod // namespace/name → what was counted
	profiles map[string]*podProfile
	scorers  []weightedScorer
	qc       *quantityCache
	scratch  []int32
}

// nodeInfo is the scheduler's view of one node.
type nodeInfo struct {
	node      *api.Node
	idx, zone int32
	alloc     Resources
	used      Resources // requests of the pods counted on the node
	scoreUsed Resources // the same with scoring defaults for zero requests
}

// podInfo is what the pipeline knows of the pod being placed.
type podInfo struct {
	pod      *api.Pod
	req      Resources
	scoreReq Resources
	ownerKey string
	owner    *ownerCounts // nil while the owner has no counted pod
	prof     *podProfile
}

// ownerCounts counts the pods of one owner per zone and per node.
type ownerCounts struct {
	zone  []int32
	node  map[int32]int32
	total int
}

// placedPod is what Add or Schedule counted for one pod, so Remove can undo it.
type placedPod struct {
	node     int32
	req      Resources
	scoreReq Resources
	owner    string
}

// podProfile caches the static filters' verdict for one pod shape.
type podProfile struct {
	zoneNodes [][]int32 // per zone, the nodes that pass, by name
	cursor    []int     // per zone, where the next search starts
	reasons   map[string]int
	pref      []int32 // preferred-affinity score per node; nil without preferences
}

// maxProfiles bounds the profile cache; past it the cache starts over.
const maxProfiles = 256

// NewScheduler builds the scheduler's state from the nodes and the pods
// bound to them (pods without spec.nodeName, on unknown nodes, or finished
// are not counted). Input order does not matter.
func NewScheduler(cfg SchedulerConfig, nodes []*api.Node, boundPods []*api.Pod) *Scheduler {
	cfg = cfg.withDefaults()
	s := &Scheduler{
		cfg:      cfg,
		spread:   !cfg.DisableSpread,
		byName:   make(map[string]int32, len(nodes)),
		owners:   map[string]*ownerCounts{},
		pods:     make(map[string]placedPod, len(boundPods)),
		profiles: map[string]*podProfile{},
		qc:       newQuantityCache(),
	}
	sorted := make([]*api.Node, 0, len(nodes))
	for _, n := range nodes {
		if n != nil {
			sorted = append(sorted, n)
		}
	}
	slices.SortStableFunc(sorted, func(a, b *api.Node) int { return strings.Compare(a.Name, b.Name) })
	sorted = slices.CompactFunc(sorted, func(a, b *api.Node) bool { return a.Name == b.Name })

	zoneSet := map[string]bool{}
	for _, n := range sorted {
		zoneSet[n.Labels[cfg.ZoneLabel]] = true
	}
	s.zones = slices.Sorted(maps.Keys(zoneSet))
	zoneIdx := make(map[string]int32, len(s.zones))
	for i, z := range s.zones {
		zoneIdx[z] = int32(i)
	}
	s.nodes = make([]nodeInfo, len(sorted))
	for i, n := range sorted {
		s.nodes[i] = nodeInfo{node: n, idx: int32(i), zone: zoneIdx[n.Labels[cfg.ZoneLabel]], alloc: nodeAllocatable(n, s.qc)}
		s.byName[n.Name] = int32(i)
	}

	if s.spread {
		s.scorers = append(s.scorers, weightedScorer{nodeSpread{}, weightNodeSpread})
	}
	if cfg.Strategy == StrategyBinPack {
		s.scorers = append(s.scorers, weightedScorer{binPack{}, weightResources})
	} else {
		s.scorers = append(s.scorers, weightedScorer{leastAllocated{}, weightResources})
	}
	s.scorers = append(s.scorers, weightedScorer{preferredAffinity{}, weightPreferAffine})

	for _, p := range boundPods {
		s.Add(p)
	}
	return s
}

// Add counts a pod bound to a node, or updates what is counted for it (a
// pod is known by namespace/name): a pod that moved is moved, a finished pod
// or one on an unknown node is no longer counted.
func (s *Scheduler) Add(pod *api.Pod) {
	if pod == nil {
		return
	}
	s.Remove(pod)
	if pod.Spec.NodeName == "" || pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed {
		return
	}
	idx, ok := s.byName[pod.Spec.NodeName]
	if !ok {
		return
	}
	req := podRequests(pod, s.qc)
	s.record(podNameKey(pod), placedPod{node: idx, req: req, scoreReq: scoringRequests(req), owner: spreadKey(pod)})
}

// Remove stops counting a pod (deleted, finished, or unbound). Removing a
// pod that is not counted does nothing.
func (s *Scheduler) Remove(pod *api.Pod) {
	if pod == nil {
		return
	}
	key := podNameKey(pod)
	pl, ok := s.pods[key]
	if !ok {
		return
	}
	delete(s.pods, key)
	n := &s.nodes[pl.node]
	n.used = n.used.Sub(pl.req)
	n.scoreUsed = n.scoreUsed.Sub(pl.scoreReq)
	if oc := s.owners[pl.owner]; oc != nil {
		oc.zone[n.zone]--
		if oc.node[pl.node]--; oc.node[pl.node] == 0 {
			delete(oc.node, pl.node)
		}
		if oc.total--; oc.total == 0 {
			delete(s.owners, pl.owner)
		}
	}
}

func (s *Scheduler) record(key string, pl placedPod) {
	s.pods[key] = pl
	n := &s.nodes[pl.node]
	n.used = n.used.Add(pl.req)
	n.scoreUsed = n.scoreUsed.Add(pl.scoreReq)
	if pl.owner == "" {
		return
	}
	oc := s.owners[pl.owner]
	if oc == nil {
		oc = &ownerCounts{zone: make([]int32, len(s.zones)), node: map[int32]int32{}}
		s.owners[pl.owner] = oc
	}
	oc.zone[n.zone]++
	oc.node[pl.node]++
	oc.total++
}

// Schedule picks a node for the pod and counts the pod there, so the next
// call sees it. It returns "" and the reasons when no node fits. A pod that
// is already counted (by namespace/name) is first uncounted: scheduling it
// again moves it.
func (s *Scheduler) Schedule(pod *api.Pod) (node string, explain Explanation) {
	s.Remove(pod)
	req := podRequests(pod, s.qc)
	p := podInfo{pod: pod, req: req, scoreReq: scoringRequests(req), ownerKey: spreadKey(pod)}
	if p.ownerKey != "" {
		p.owner = s.owners[p.ownerKey]
	}
	p.prof = s.profileFor(&p)
	best, feasible := s.pick(&p)
	if best < 0 {
		return "", s.explain(&p)
	}
	s.record(podNameKey(pod), placedPod{node: best, req: p.req, scoreReq: p.scoreReq, owner: p.ownerKey})
	return s.nodes[best].node.Name, Explanation{Feasible: feasible, Total: len(s.nodes)}
}

// pick runs steps 2 to 4 of the pipeline and returns the chosen node's
// index (-1 when none fits) and how many feasible nodes it scored.
func (s *Scheduler) pick(p *podInfo) (best int32, feasible int) {
	prof := p.prof
	zs := s.scratch[:0]
	for z, nodes := range prof.zoneNodes {
		if len(nodes) > 0 {
			zs = append(zs, int32(z))
		}
	}
	s.scratch = zs
	spread := s.spread && p.owner != nil && len(zs) > 1
	if spread {
		cnt := p.owner.zone
		slices.SortFunc(zs, func(a, b int32) int {
			if c := cmp.Compare(cnt[a], cnt[b]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
	}
	best = -1
	var bestScore int64
	for i := 0; i < len(zs); {
		// The tier: zones tied at the lowest owner count not tried yet.
		j := len(zs)
		if spread {
			cnt := p.owner.zone
			for j = i + 1; j < len(zs) && cnt[zs[j]] == cnt[zs[i]]; j++ {
			}
		}
		tier := zs[i:j]
		candidates := 0
		for _, z := range tier {
			candidates += len(prof.zoneNodes[z])
		}
		limit := s.sampleSize(candidates)
		bestZone, bestEnd := int32(-1), 0 // the winner's zone, where its search ended
		for _, z := range tier {
			nodes := prof.zoneNodes[z]
			quota := (limit*len(nodes) + candidates - 1) / candidates
			found, pos, firstFit := 0, prof.cursor[z], -1
			for k := 0; k < len(nodes) && found < quota; k++ {
				idx, at := nodes[pos], pos
				if pos++; pos == len(nodes) {
					pos = 0
				}
				n := &s.nodes[idx]
				if !fitsDynamic(p, n) {
					continue
				}
				if found++; found == 1 {
					firstFit = at
				}
				sc := s.score(p, n)
				if best < 0 || sc > bestScore || (sc == bestScore && idx < best) {
					best, bestScore, bestZone = idx, sc, z
				}
			}
			if bestZone == z {
				bestEnd = pos
			}
			// Nodes that did not fit are skipped next time; the search
			// starts again at the first node that fitted.
			if firstFit >= 0 {
				prof.cursor[z] = firstFit
			} else {
				prof.cursor[z] = pos
			}
			feasible += found
		}
		if best >= 0 {
			// The winning zone's next search moves on to nodes this one
			// did not look at.
			prof.cursor[bestZone] = bestEnd
			return best, feasible
		}
		i = j
	}
	return -1, 0
}

func (s *Scheduler) sampleSize(candidates int) int {
	n := candidates * s.cfg.SamplePercent / 100
	n = max(n, s.cfg.SampleMin)
	return min(n, candidates)
}

func fitsDynamic(p *podInfo, n *nodeInfo) bool {
	for _, f := range dynamicFilters {
		if f.Reject(p, n) != "" {
			return false
		}
	}
	return true
}

func (s *Scheduler) score(p *podInfo, n *nodeInfo) int64 {
	var sum int64
	for _, sc := range s.scorers {
		sum += sc.weight * sc.Score(p, n)
	}
	return sum
}

// explain counts, for a pod nothing fits, why each node was ruled out.
func (s *Scheduler) explain(p *podInfo) Explanation {
	e := Explanation{Total: len(s.nodes), Reasons: maps.Clone(p.prof.reasons)}
	if e.Reasons == nil {
		e.Reasons = map[string]int{}
	}
	for _, nodes := range p.prof.zoneNodes {
		for _, idx := range nodes {
			r := ""
			for _, f := range dynamicFilters {
				if r = f.Reject(p, &s.nodes[idx]); r != "" {
					break
				}
			}
			if r == "" {
				e.Feasible++
			} else {
				e.Reasons[r]++
			}
		}
	}
	return e
}

// profileFor returns the cached static verdict for the pod's shape, running
// the static filters over every node the first time the shape is seen.
func (s *Scheduler) profileFor(p *podInfo) *podProfile {
	key := profileKey(p.pod)
	if prof, ok := s.profiles[key]; ok {
		return prof
	}
	prof := &podProfile{
		zoneNodes: make([][]int32, len(s.zones)),
		cursor:    make([]int, len(s.zones)),
		reasons:   map[string]int{},
	}
	terms := preferredTerms(p.pod)
	if terms != nil {
		prof.pref = make([]int32, len(s.nodes))
	}
	for i := range s.nodes {
		n := &s.nodes[i]
		r := ""
		for _, f := range staticFilters {
			if r = f.Reject(p, n); r != "" {
				break
			}
		}
		if r != "" {
			prof.reasons[r]++
			continue
		}
		prof.zoneNodes[n.zone] = append(prof.zoneNodes[n.zone], n.idx)
		if terms != nil {
			prof.pref[i] = int32(preferredScore(terms, n.node.Labels))
		}
	}
	if len(s.profiles) >= maxProfiles {
		clear(s.profiles)
	}
	s.profiles[key] = prof
	return prof
}

// profileKey is the part of a pod's spec the static filters read, as a
// canonical string ("" for a pod with none of it, the common case).
func profileKey(pod *api.Pod) string {
	sp := &pod.Spec
	if len(sp.NodeSelector) == 0 && sp.Affinity == nil && len(sp.Tolerations) == 0 {
		return ""
	}
	b, err := json.Marshal(struct {
		S map[string]string
		A *api.Affinity
		T []api.Toleration
	}{sp.NodeSelector, sp.Affinity, sp.Tolerations})
	if err != nil { // cannot happen: plain strings and numbers
		panic(fmt.Sprintf("placement: profile key: %v", err))
	}
	return string(b)
}

// ownerKey groups the pods that spread together: those with the same
// controller (by uid), else those in one namespace with the same labels.
// A pod with neither has no group.
func spreadKey(pod *api.Pod) string {
	if c := api.ControllerOf(&pod.ObjectMeta); c != nil {
		if c.UID != "" {
			return "uid:" + c.UID
		}
		return "ref:" + pod.Namespace + "/" + c.Kind + "/" + c.Name
	}
	if len(pod.Labels) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("labels:" + pod.Namespace)
	for _, k := range slices.Sorted(maps.Keys(pod.Labels)) {
		b.WriteString("," + k + "=" + pod.Labels[k])
	}
	return b.String()
}

func podNameKey(pod *api.Pod) string { return pod.Namespace + "/" + pod.Name }

// Explanation says how a placement was decided. When no node fits, Reasons
// counts the nodes under the first filter that ruled each out, so Feasible
// plus the counts is Total. When a node was found, Feasible is the number
// of feasible nodes scored (the sample, not every feasible node) and
// Reasons is nil: the fast path does not count rejections.
type Explanation struct {
	Feasible, Total int
	Reasons         map[string]int
}

// String writes the explanation as Kubernetes does:
// "0/5 nodes available: 3 insufficient memory, 2 did not match nodeSelector",
// reasons by count, most first, then alphabetically.
func (e Explanation) String() string {
	s := fmt.Sprintf("%d/%d nodes available", e.Feasible, e.Total)
	if len(e.Reasons) == 0 {
		return s
	}
	type rc struct {
		r string
		c int
	}
	list := make([]rc, 0, len(e.Reasons))
	for r, c := range e.Reasons {
		list = append(list, rc{r, c})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].c != list[j].c {
			return list[i].c > list[j].c
		}
		return list[i].r < list[j].r
	})
	parts := make([]string, len(list))
	for i, x := range list {
		parts[i] = fmt.Sprintf("%d %s", x.c, x.r)
	}
	return s + ": " + strings.Join(parts, ", ")
}
