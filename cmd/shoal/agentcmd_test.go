package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestAgentFlagsNodeLossGrace(t *testing.T) {
	parse := func(args ...string) (time.Duration, time.Duration, error) {
		t.Helper()
		fs := flag.NewFlagSet("agent", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var f agentFlags
		f.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.config(io.Discard)
		return cfg.ClusterNet.NodeLossGrace, cfg.ClusterNet.NodeUnknownGrace, err
	}
	dead, unknown, err := parse()
	if err != nil || dead != 3*time.Second || unknown != 40*time.Second {
		t.Errorf("defaults: %v %v %v", dead, unknown, err)
	}
	dead, unknown, err = parse("--node-loss-grace", "1500ms", "--node-unknown-grace", "2m")
	if err != nil || dead != 1500*time.Millisecond || unknown != 2*time.Minute {
		t.Errorf("set: %v %v %v", dead, unknown, err)
	}
	for _, bad := range [][]string{{"--node-loss-grace", "0s"}, {"--node-unknown-grace", "-1s"}} {
		if _, _, err := parse(bad...); err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(bad[0], "--")) {
			t.Errorf("%v: %v, want an error naming the flag", bad, err)
		}
	}
}
