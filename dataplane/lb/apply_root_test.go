package lb

import (
	"testing"
)

// TestApplyMatchesRender: for every golden case, the kernel, listed by nft
// after a Resync, holds exactly what Render prints.
func TestApplyMatchesRender(t *testing.T) {
	requireRoot(t)
	rootGuard(t)
	for _, c := range renderCases() {
		t.Run(c.name, func(t *testing.T) {
			ns := newNS(t)
			a := newApplier(t, c.cfg, ns)
			if err := a.Resync(c.services); err != nil {
				t.Fatal(err)
			}
			got := canonical(listTable(t, ns, c.cfg.Table), false)
			want := canonical(Render(c.cfg, c.services), false)
			if got != want {
				t.Fatalf("kernel differs from Render (-render +kernel):\n%s", lineDiff(want, got))
			}
		})
	}
}
