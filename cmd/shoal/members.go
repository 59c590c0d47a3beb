package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/shoal-dev/shoal/api"
)

func runMembers(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("members", "members [--server ADDR] [-o wide|json]", errOut)
	var cf clientFlags
	cf.register(fs)
	output := fs.String("o", "", "output format: wide or json")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		fs.Usage()
		return errUsage
	}
	switch *output {
	case "", "wide", "json":
	default:
		return fmt.Errorf("-o: unsupported output format %q (use wide or json)", *output)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	ms, err := c.Members(ctx)
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if ms == nil {
			ms = []api.MemberInfo{}
		}
		return enc.Encode(struct {
			Members []api.MemberInfo `json:"members"`
		}{ms})
	}
	printMembers(out, ms, *output == "wide", time.Now())
	return nil
}

// printMembers writes the member table, as `consul members` does.
func printMembers(out io.Writer, ms []api.MemberInfo, wide bool, now time.Time) {
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	if wide {
		fmt.Fprintln(tw, "NAME\tADDRESS\tZONE\tSTATUS\tROLE\tAPI\tRAFT\tCLUSTER\tVERSION\tSINCE")
	} else {
		fmt.Fprintln(tw, "NAME\tADDRESS\tZONE\tSTATUS\tROLE")
	}
	for _, m := range ms {
		status := m.Status
		if m.Leaving && status == "alive" {
			status = "leaving"
		}
		role := m.Role
		if role == "" {
			role = "none"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", m.Name, m.Address, orDash(m.Zone), status, role)
		if wide {
			since := "-"
			if !m.Since.IsZero() {
				since = now.Sub(m.Since).Round(time.Second).String()
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s", orDash(m.APIAddr), orDash(m.RaftAddr), orDash(m.ClusterID), orDash(m.Version), since)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}
