package chaos

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/testenv"
)

func requireTools(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s not installed (Debian: iproute2, nftables)", tool)
		}
	}
}

// TestLinearizableUnderFaults is the bounded run of `make test`: one
// episode of each fault kind on one five-agent cluster, then the check.
func TestLinearizableUnderFaults(t *testing.T) {
	requireTools(t)
	if os.Getenv("SHOAL_CHAOS_SCHEDULES") != "" {
		t.Skip("SHOAL_CHAOS_SCHEDULES set: TestChaos runs instead")
	}
	bin := BuildShoal(t, t.TempDir())
	c := NewCluster(t, bin, 5)
	res := Run(t, c, Config{
		Faults:  Faults,
		Hold:    func() time.Duration { return 3 * time.Second },
		Keys:    4,
		Clients: 1,
		Pace:    20 * time.Millisecond,
		Timeout: 3 * time.Second,
	})
	t.Logf("\n%s", Table([]Findings{res}))
	for _, ep := range res.Episodes {
		t.Logf("%-17s %-22s write gap %v home gap %v", ep.Fault, ep.Target, ep.Gap.Round(time.Millisecond), ep.HomeGap.Round(time.Millisecond))
	}
	if res.Lost > 0 {
		t.Errorf("%d acknowledged writes lost", res.Lost)
	}
	if res.Ops < 200 {
		t.Errorf("only %d operations recorded: the clients did not run", res.Ops)
	}
}

// TestChaos is `make chaos`: SHOAL_CHAOS_SCHEDULES random episodes (at
// least 100 for the figure), on fresh clusters of 20 episodes each,
// and the table of what they found.
func TestChaos(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SHOAL_CHAOS_SCHEDULES"))
	if n <= 0 {
		t.Skip("set SHOAL_CHAOS_SCHEDULES=N (make chaos) to run N random fault schedules")
	}
	requireTools(t)
	bin := BuildShoal(t, t.TempDir())
	var results []Findings
	for done := 0; done < n; {
		batch := min(20, n-done)
		faults := make([]Fault, batch)
		for i := range faults {
			faults[i] = Faults[rand.IntN(len(Faults))]
		}
		t.Run("cluster"+strconv.Itoa(len(results)+1), func(t *testing.T) {
			c := NewCluster(t, bin, 5)
			res := Run(t, c, Config{
				Faults:  faults,
				Hold:    func() time.Duration { return time.Second + rand.N(5*time.Second) },
				Keys:    5,
				Clients: 2,
				Pace:    20 * time.Millisecond,
				Timeout: 3 * time.Second,
			})
			results = append(results, res)
			t.Logf("\n%s", Table([]Findings{res}))
			if res.Lost > 0 {
				t.Errorf("%d acknowledged writes lost", res.Lost)
			}
		})
		done += batch
	}
	t.Logf("all runs:\n%s", Table(results))
}
