package main

import (
	"context"
	"fmt"
	"io"

	"github.com/shoal-dev/shoal/consensus/pki"
)

// runTokenGenerate is `shoal token generate`: offline, it prints a new
// bootstrap token ("SHOAL-1-<secret>") for the initial agents of a cluster
// started with --bootstrap-expect: each gets the same token; gossip is
// encrypted with a key derived from it until the cluster exists, and the
// agents that do not bootstrap fetch their certificate from the one that
// does, which proves it knows the token's secret.
func runTokenGenerate(_ context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("token generate", "token generate", errOut)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("token generate: unexpected argument %q", pos[0])
	}
	tok, err := pki.NewBootstrapToken()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, tok.String())
	return err
}
