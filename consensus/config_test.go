package consensus

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.ID = "n1"
		c.DataDir = "/var/lib/shoal/raft"
		c.BindAddr = "0.0.0.0:7071"
		return c
	}
	_, inmem := raft.NewInmemTransport("")
	cases := []struct {
		name  string
		edit  func(*Config)
		field string // "" means valid
	}{
		{"default", func(*Config) {}, ""},
		{"test preset", func(c *Config) { t := TestConfig(); t.ID, t.InMemory, t.Transport = "n", true, inmem; *c = t }, ""},
		{"advertise", func(c *Config) { c.AdvertiseAddr = "10.0.0.5:7071" }, ""},
		{"no id", func(c *Config) { c.ID = "" }, "ID"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "DataDir"},
		{"in memory without dir", func(c *Config) { c.DataDir, c.InMemory = "", true }, ""},
		{"no bind", func(c *Config) { c.BindAddr = "" }, "BindAddr"},
		{"bind without port", func(c *Config) { c.BindAddr = "127.0.0.1" }, "BindAddr"},
		{"transport instead of bind", func(c *Config) { c.BindAddr, c.Transport = "", inmem }, ""},
		{"advertise unspecified", func(c *Config) { c.AdvertiseAddr = "0.0.0.0:7071" }, "AdvertiseAddr"},
		{"advertise hostname", func(c *Config) { c.AdvertiseAddr = "raft.local:7071" }, "AdvertiseAddr"},
		{"advertise port 0", func(c *Config) { c.AdvertiseAddr = "10.0.0.5:0" }, "AdvertiseAddr"},
		{"heartbeat tiny", func(c *Config) { c.HeartbeatTimeout = time.Millisecond }, "HeartbeatTimeout"},
		{"election below heartbeat", func(c *Config) { c.ElectionTimeout = c.HeartbeatTimeout / 2 }, "ElectionTimeout"},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout }, "LeaderLeaseTimeout"},
		{"lease zero", func(c *Config) { c.LeaderLeaseTimeout = 0 }, "LeaderLeaseTimeout"},
		{"commit zero", func(c *Config) { c.CommitTimeout = 0 }, "CommitTimeout"},
		{"snapshot threshold zero", func(c *Config) { c.SnapshotThreshold = 0 }, "SnapshotThreshold"},
		{"snapshot bytes zero", func(c *Config) { c.SnapshotBytes = 0 }, "SnapshotBytes"},
		{"snapshot bytes tiny", func(c *Config) { c.SnapshotBytes = MinSnapshotBytes - 1 }, "SnapshotBytes"},
		{"snapshot bytes huge", func(c *Config) { c.SnapshotBytes = MaxSnapshotBytes + 1 }, "SnapshotBytes"},
		{"trailing logs huge", func(c *Config) { c.TrailingLogs = MaxTrailingLogs + 1 }, "TrailingLogs"},
		{"trailing bytes huge", func(c *Config) { c.TrailingBytes = MaxSnapshotBytes + 1 }, "TrailingBytes"},
		{"trailing bytes zero", func(c *Config) { c.TrailingBytes = 0 }, ""},
		{"snapshot interval zero", func(c *Config) { c.SnapshotInterval = 0 }, "SnapshotInterval"},
		{"retain zero", func(c *Config) { c.SnapshotRetain = 0 }, "SnapshotRetain"},
		{"apply timeout zero", func(c *Config) { c.ApplyTimeout = 0 }, "ApplyTimeout"},
		{"log store wal", func(c *Config) { c.LogStore = LogStoreWAL }, ""},
		{"log store empty is bolt", func(c *Config) { c.LogStore = "" }, ""},
		{"log store unknown", func(c *Config) { c.LogStore = "rocks" }, "LogStore"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.field != "" && err == nil:
				t.Fatalf("Validate accepted a bad %s", tc.field)
			case tc.field != "" && !strings.Contains(err.Error(), " "+tc.field+":"):
				t.Fatalf("Validate: %q does not name %s", err, tc.field)
			}
			if err == nil {
				if rerr := raft.ValidateConfig(c.raftConfig(testLogger("v"))); rerr != nil {
					t.Fatalf("Validate passed but raft rejects the derived config: %v", rerr)
				}
			}
		})
	}
}

// Raft bounds an AppendEntries (and a batch for the FSM) only by its count
// of entries; ours hold up to maxBatchBytes each, so the count must keep a
// request's bytes bounded, while leaving room for more than the two entries
// the batcher keeps in flight.
func TestRaftConfigBoundsAppendEntriesBytes(t *testing.T) {
	rc := DefaultConfig().raftConfig(testLogger("v"))
	if got, limit := rc.MaxAppendEntries*maxBatchBytes, 128<<20; got > limit {
		t.Fatalf("MaxAppendEntries %d × maxBatchBytes %d = %d bytes in one AppendEntries; want at most %d",
			rc.MaxAppendEntries, maxBatchBytes, got, limit)
	}
	if rc.MaxAppendEntries < maxInflightBatches+maxInflightUrgentBatches {
		t.Fatalf("MaxAppendEntries %d: fewer than the %d entries the batchers may have in raft at once",
			rc.MaxAppendEntries, maxInflightBatches+maxInflightUrgentBatches)
	}
	if !rc.BatchApplyCh {
		t.Fatal("BatchApplyCh off")
	}
}
