package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// raftStatus mirrors what /v1/cluster/raft returns (field names match
// case-insensitively).
type raftStatus struct {
	ID           string
	State        string
	LeaderID     string
	LeaderAddr   string // Raft
	LeaderAPI    string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	LastIndex    uint64
	LastContact  time.Time
	// SkippedEntries: log entries this voter could not apply.
	SkippedEntries uint64
	Voters         []struct {
		ID       string
		Addr     string
		Suffrage string
	}
}

func runStatus(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("status", "status [--server ADDR]", errOut)
	var cf clientFlags
	cf.register(fs)
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	raw, err := c.ClusterRaft(ctx)
	if err != nil {
		return err
	}
	var st raftStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("decoding /v1/cluster/raft: %w", err)
	}
	tw := tabwriter.NewWriter(out, 0, 8, 1, ' ', 0)
	fmt.Fprintf(tw, "This agent:\t%s (%s)\n", st.ID, st.State)
	leader := st.LeaderID
	if leader == "" {
		leader = "<none>"
	} else {
		if st.LeaderAPI != "" {
			leader += ", API at " + st.LeaderAPI
		}
		if st.LeaderAddr != "" {
			leader += ", Raft at " + st.LeaderAddr
		}
	}
	fmt.Fprintf(tw, "Leader:\t%s\n", leader)
	fmt.Fprintf(tw, "Term:\t%d\n", st.Term)
	fmt.Fprintf(tw, "Commit index:\t%d\n", st.CommitIndex)
	fmt.Fprintf(tw, "Applied index:\t%d\n", st.AppliedIndex)
	if !st.LastContact.IsZero() {
		fmt.Fprintf(tw, "Last contact:\t%s ago\n", time.Since(st.LastContact).Round(time.Millisecond))
	}
	if st.SkippedEntries > 0 {
		fmt.Fprintf(tw, "Skipped entries:\t%d (log entries this voter could not apply; see its log)\n", st.SkippedEntries)
	}
	tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "VOTER\tADDRESS\tSUFFRAGE\tLEADER")
	for _, v := range st.Voters {
		isLeader := ""
		if v.ID == st.LeaderID {
			isLeader = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.ID, v.Addr, v.Suffrage, isLeader)
	}
	return tw.Flush()
}
