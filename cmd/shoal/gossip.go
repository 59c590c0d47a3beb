package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Limits of `shoal gossip rotate --wait`.
const (
	defaultGossipWait = 5 * time.Minute
	maxGossipWait     = time.Hour
	gossipWaitPoll    = time.Second
)

const gossipUsage = `Usage: shoal gossip SUBCOMMAND [flags]

Subcommands:
  status [-o json]          the gossip keys (short IDs, never the keys) and each member's keyring
  rotate [--wait] [--timeout 5m]
                            start a gossip key rotation: a new key is installed on every
                            agent, then used, then the old one removed, each step once every
                            alive member did the previous one; revoked nodes never get it

Every subcommand takes --server/-s, --token and --ca-file (see 'shoal help'); both need an admin token.
`

// runGossip dispatches `shoal gossip SUBCOMMAND`.
func runGossip(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(errOut, gossipUsage)
		return errUsage
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "status":
		return runGossipStatus(ctx, rest, out, errOut)
	case "rotate":
		return runGossipRotate(ctx, rest, out, errOut)
	case "-h", "--help", "help":
		fmt.Fprint(out, gossipUsage)
		return nil
	}
	fmt.Fprintf(errOut, "shoal gossip: unknown subcommand %q\n\n%s", sub, gossipUsage)
	return errUsage
}

func runGossipStatus(ctx context.Context, args []string, out, errOut io.Writer) error {
	return runShow(ctx, "gossip status", args, out, errOut, (*api.Client).GossipKeys, printGossipStatus)
}

func printGossipStatus(out io.Writer, st api.GossipKeyStatus) {
	phase := st.Phase
	if phase == "" {
		phase = "none"
	}
	fmt.Fprintf(out, "Rotation phase: %s", phase)
	if !st.Since.IsZero() {
		fmt.Fprintf(out, " (since %s)", st.Since.Format(time.RFC3339))
	}
	fmt.Fprintln(out)
	var keys []string
	for _, k := range st.Keys {
		s := k.ID
		if k.Primary {
			s += " (primary)"
		}
		keys = append(keys, s)
	}
	fmt.Fprintf(out, "Keys:           %s\n", strings.Join(keys, ", "))
	fmt.Fprintf(out, "Members show:   %s when current\n\n", st.Expect)
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tSTATE\tKEYRING")
	for _, m := range st.Members {
		kr := m.Keyring
		if kr == "" {
			kr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Name, m.State, kr)
	}
	tw.Flush()
}

func runGossipRotate(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("gossip rotate", "gossip rotate [--wait] [--timeout 5m] [--server ADDR]", errOut)
	var cf clientFlags
	cf.registerConn(fs)
	wait := fs.Bool("wait", false, "wait until the rotation is done (phase none)")
	timeout := fs.Duration("timeout", defaultGossipWait, "with --wait, how long to wait at most (at most 1h)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return fmt.Errorf("gossip rotate takes no argument, got %q", pos[0])
	case *timeout <= 0 || *timeout > maxGossipWait:
		return fmt.Errorf("--timeout: %v is outside (0, %v]", *timeout, maxGossipWait)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	st, err := c.RotateGossipKey(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "Started a gossip key rotation.")
	if !*wait {
		printGossipStatus(out, st)
		fmt.Fprintln(out, "\nFollow it with: shoal gossip status")
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	last := st.Phase
	for st.Phase != "" {
		select {
		case <-wctx.Done():
			printGossipStatus(out, st)
			return fmt.Errorf("gossip rotate: still in phase %s after %v (the members marked waiting have not confirmed)", st.Phase, *timeout)
		case <-time.After(gossipWaitPoll):
		}
		next, err := c.GossipKeys(wctx)
		if err != nil {
			if errors.Is(wctx.Err(), context.DeadlineExceeded) {
				continue
			}
			return err
		}
		st = next
		if st.Phase != last {
			fmt.Fprintf(out, "phase: %s\n", phaseName(st.Phase))
			last = st.Phase
		}
	}
	printGossipStatus(out, st)
	return nil
}

func phaseName(p string) string {
	if p == "" {
		return "none (done)"
	}
	return p
}
