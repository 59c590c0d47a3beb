package main

import (
	"slices"
	"testing"
)

// Over as many rounds as there are loads, each load takes each place in a
// round once, and every round has every load.
func TestRoundLoadsRotate(t *testing.T) {
	saved := shapes
	defer func() { shapes = saved }()
	shapes = []string{leaderShape, spreadShape}
	writers := []int{1, 64}
	n := len(shapes) * len(writers)
	seen := map[loadSpec]map[int]bool{}
	for r := 1; r <= n; r++ {
		loads := roundLoads(r, writers)
		if len(loads) != n {
			t.Fatalf("round %d: %d loads, want %d", r, len(loads), n)
		}
		for place, l := range loads {
			if seen[l] == nil {
				seen[l] = map[int]bool{}
			}
			if seen[l][place] {
				t.Fatalf("round %d: %v in place %d again", r, l, place)
			}
			seen[l][place] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct loads, want %d", len(seen), n)
	}
	if first := roundLoads(1, writers); !slices.Equal(first, []loadSpec{{leaderShape, 1}, {leaderShape, 64}, {spreadShape, 1}, {spreadShape, 64}}) {
		t.Fatalf("round 1: %v, want the flags' order", first)
	}
	if again := roundLoads(n+1, writers); !slices.Equal(again, roundLoads(1, writers)) {
		t.Fatalf("round %d: %v, want round 1's order", n+1, again)
	}
}
