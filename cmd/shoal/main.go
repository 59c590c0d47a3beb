package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, out, errOut io.Writer) error
}

var commands = map[string]command{
	"agent":    {"run the Shoal agent on this host", runAgent},
	"apply":    {"create or update objects from manifests (-f FILE|-)", runApply},
	"get":      {"list objects of a kind, or show one", runGet},
	"describe": {"show one object in detail", runDescribe},
	"delete":   {"delete objects by manifest or by kind and name", runDelete},
	"members":  {"list the agents in gossip: name, address, zone, status, role", runMembers},
	"status":   {"show the control plane: leader, voters, indexes", runStatus},
	"token":    {"join and API tokens: show, rotate voter|worker, create", runToken},
	"gossip":   {"gossip encryption keys: status, rotate (admin)", runGossip},
	"revoke":   {"revoke a node's certificates: the voters refuse them, it cannot renew", runRevoke},
	"scale":    {"set the replicas of a deployment, replicaset or statefulset", runScale},
	"rollout":  {"follow, list or undo a deployment's rollout: status|history|undo", runRollout},
	"cordon":   {"mark a node unschedulable", runCordon},
	"logs":     {"print a container's log (-f to follow, --previous)", runLogs},
	"login":    {"check a server, CA and token and save them for later commands", runLogin},
	"logout":   {"remove the credentials saved by login", runLogout},
	"exec":     {"run a command in a pod's container: exec POD -- CMD", runExec},
	"uncordon": {"mark a node schedulable again", runUncordon},
	"raft":     {"change the Raft voters by hand: add-voter ID ADDR, remove ID", runRaft},
	"recover":  {"rebuild the control plane from one surviving voter after losing quorum for good", runRecover},
	"version":  {"print the version", runVersion},
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: shoal COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The API address comes from --server (-s), else $SHOAL_ADDR, else the config file, else "+defaultServer+".")
	fmt.Fprintln(w, "Either may list several agents, comma-separated: the client moves to the next when one")
	fmt.Fprintln(w, "cannot be reached, and never sends a write twice when its outcome is unknown. A bare")
	fmt.Fprintln(w, "host:port means https; an agent run with --insecure is reached with http:// and no token.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The token and the cluster CA come from --token and --ca-file, else $SHOAL_TOKEN and")
	fmt.Fprintln(w, "$SHOAL_CA_FILE, else the config file 'shoal login' writes ($SHOAL_CONFIG, default")
	fmt.Fprintln(w, "~/.config/shoal/config.json), else the local agent's data dir ($SHOAL_DATA_DIR, default")
	fmt.Fprintln(w, defaultDataDir+": admin.token and tls/ca.crt, when readable).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'shoal COMMAND -h' for the flags of a command.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(out)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(errOut, "shoal: unknown command %q\n\n", args[0])
		usage(errOut)
		return 2
	}
	if _, err := envServers(); err != nil && args[0] != "agent" {
		fmt.Fprintln(errOut, "shoal:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, args[1:], out, errOut); err != nil {
		if err == errUsage {
			return 2
		}
		if code, ok := err.(exitCode); ok {
			return int(code)
		}
		msg := err.Error() + schemeHint(err.Error())
		if !strings.HasPrefix(msg, "shoal") {
			msg = "shoal " + args[0] + ": " + msg
		}
		fmt.Fprintln(errOut, msg)
		return 1
	}
	return 0
}

// schemeHint explains the two errors of a scheme that does not match the
// agent's: https to an agent run with --insecure, http to a secure one.
func schemeHint(msg string) string {
	switch {
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return "\n(the agent serves plain http, as with --insecure: give its address as http://HOST:PORT)"
	case strings.Contains(msg, "Client sent an HTTP request to an HTTPS server"):
		return "\n(the agent serves https: give its address as https://HOST:PORT or a bare HOST:PORT)"
	}
	return ""
}

func runVersion(_ context.Context, _ []string, out, _ io.Writer) error {
	fmt.Fprintln(out, "shoal", version)
	return nil
}
