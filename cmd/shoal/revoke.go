package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// runRevoke is `shoal revoke NODE`: the node's certificates stop working
// on the voters (new connections) and cannot be renewed.
func runRevoke(ctx context.Context, args []string, out, errOut io.Writer) error {
	c, pos, err := connOnly("revoke", "revoke NODE [--server ADDR]", args, errOut, func(pos []string) error {
		if len(pos) != 1 || pos[0] == "" {
			return fmt.Errorf("revoke: want one node name, got %d arguments", len(pos))
		}
		return nil
	})
	if err != nil {
		return err
	}
	at, err := c.RevokeNode(ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Revoked node %s at %s: the voters refuse its certificates in new connections and it cannot renew them.\n", pos[0], at.Format(time.RFC3339))
	fmt.Fprintln(out, "To bring it back: stop its agent, empty its --data-dir, and start it with a join token (shoal token show).")
	return nil
}
