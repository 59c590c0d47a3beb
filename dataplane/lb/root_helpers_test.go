package lb

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/shoal-dev/shoal/integration/testenv"
)

// Root tests. Every table, address, link and route they make lives in
// network namespaces the test created (with no route out of the machine);
// rootGuard fails a test that changed the process's own namespace.

func requireRoot(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("skipped: nft not installed (Debian: nftables)")
	}
}

// rootSnapshot is what must not change in the root namespace: its nftables
// tables and its links.
func rootSnapshot(t testing.TB) string {
	t.Helper()
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := conn.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, tb := range tables {
		lines = append(lines, fmt.Sprintf("nft table %d %s", tb.Family, tb.Name))
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		lines = append(lines, fmt.Sprintf("link %s %s", l.Attrs().Name, l.Type()))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// rootGuard compares the root namespace before and after the test; call it
// first, so that its check runs after every other cleanup.
func rootGuard(t testing.TB) {
	t.Helper()
	before := rootSnapshot(t)
	t.Cleanup(func() {
		if after := rootSnapshot(t); after != before {
			t.Errorf("root network namespace changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

// newNS makes a network namespace (loopback up) removed at cleanup.
func newNS(t testing.TB) *testenv.NetNS {
	t.Helper()
	return testenv.NewNetNS(t)
}

// run runs a command inside ns and fails the test if it fails.
func run(t testing.TB, ns *testenv.NetNS, args ...string) string {
	t.Helper()
	out, err := ns.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// listTable is `nft list table ip <table>` in ns ("" when it does not
// exist).
func listTable(t testing.TB, ns *testenv.NetNS, table string) string {
	t.Helper()
	out, err := ns.Exec("nft", "list", "table", "ip", table)
	if err != nil {
		if strings.Contains(out, "No such file or directory") {
			return ""
		}
		t.Fatal(err)
	}
	return out
}

// newApplier returns an applier on ns, closed at cleanup.
func newApplier(t testing.TB, cfg Config, ns *testenv.NetNS) *Applier {
	t.Helper()
	a, err := NewApplier(cfg, ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func init() {
	// The tests run nft and ip; make sure a stray NFT env does not change
	// their output.
	os.Unsetenv("NFT")
}
