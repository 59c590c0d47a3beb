package lb

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.nft from Render")

// TestRenderGolden compares Render with testdata/<case>.nft. After a
// deliberate change, run `go test ./dataplane/lb -run TestRenderGolden
// -update` and review the diff.
func TestRenderGolden(t *testing.T) {
	for _, c := range renderCases() {
		t.Run(c.name, func(t *testing.T) {
			got := Render(c.cfg, c.services)
			path := filepath.Join("testdata", c.name+".nft")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Render differs from %s (run with -update after checking):\n%s", path, lineDiff(string(want), got))
			}
		})
	}
}
