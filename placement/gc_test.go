package placement

import (
	"slices"
	"sort"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

func TestCollectGarbage(t *testing.T) {
	d := testDeploy(1, "img:1", api.FromInt(1), api.FromInt(0))
	rs := testRS("web-abc", 1, appX)
	rs.OwnerReferences = []api.OwnerReference{newControllerRef(d)}
	pod := testPod("web-abc-x", appX, ownedBy(rs))
	bare := testPod("bare", appX)
	other := testRS("other", 1, appX)
	otherPod := testPod("other-y", appX, ownedBy(other))
	// A ReplicaSet re-created under the same name: a new uid.
	reborn := testRS("other", 1, appX)
	reborn.UID = "uid-other-2"
	stalePod := testPod("other-z", appX, ownedBy(reborn))
	stalePod.OwnerReferences[0].UID = "uid-of-the-old-other"
	// Owned by a kind we do not judge.
	jobPod := testPod("job-pod", appX)
	yes := true
	jobPod.OwnerReferences = []api.OwnerReference{{Kind: "Job", Name: "j", UID: "uid-j", Controller: &yes}}
	dying := testPod("dying", appX, ownedBy(testRS("gone", 1, appX)), terminating())

	sorted := func(p Plan) []string {
		var s []string
		for _, r := range p.Delete {
			s = append(s, r.Kind+"/"+r.Name)
		}
		sort.Strings(s)
		return s
	}
	tests := []struct {
		name string
		objs []api.Object
		want []string
	}{
		{"all owners alive", []api.Object{d, rs, pod, bare, other, otherPod}, nil},
		{"deployment gone: cascade to pods", []api.Object{rs, pod, bare, other, otherPod},
			[]string{"Pod/web-abc-x", "ReplicaSet/web-abc"}},
		{"replicaset gone", []api.Object{d, pod, bare}, []string{"Pod/web-abc-x"}},
		{"owner re-created with a new uid", []api.Object{reborn, stalePod}, []string{"Pod/other-z"}},
		{"unjudged kind and terminating skipped", []api.Object{jobPod, dying}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := CollectGarbage(GCInput{Objects: tc.objs})
			if got := sorted(p); !slices.Equal(got, tc.want) {
				t.Errorf("deleted %v, want %v", got, tc.want)
			}
			for _, r := range p.Delete {
				if r.ResourceVersion == "" || r.UID == "" {
					t.Errorf("delete without preconditions: %+v", r)
				}
			}
		})
	}
}

func TestCollectGarbageNonControllerOwners(t *testing.T) {
	a, b := testRS("a", 1, appX), testRS("b", 1, appX)
	p := testPod("shared", appX)
	p.OwnerReferences = []api.OwnerReference{{Kind: "ReplicaSet", Name: "a", UID: a.UID}, {Kind: "ReplicaSet", Name: "b", UID: b.UID}}
	if got := CollectGarbage(GCInput{Objects: []api.Object{a, p}}); len(got.Delete) != 0 {
		t.Errorf("deleted with one owner alive: %s", got)
	}
	if got := CollectGarbage(GCInput{Objects: []api.Object{p}}); len(got.Delete) != 1 {
		t.Errorf("kept with all owners gone: %s", got)
	}
}
