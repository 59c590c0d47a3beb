package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Limits of `shoal token create`.
const (
	maxTokenNameLen   = 63
	maxTokenNamespace = 64
	maxTokenTTL       = 10 * 365 * 24 * time.Hour
	defaultTokenTTL   = "720h"
)

const tokenUsage = `Usage: shoal token SUBCOMMAND [flags]

Subcommands:
  show [-o json]            print the voter and worker join tokens and the CA fingerprint
  rotate voter|worker       replace a join token (the old one stops working at once)
  create --name N --role admin|read-only|write [--namespace a,b] [--ttl 720h]
                            make an API token and print it
  generate                  print a new bootstrap token for --bootstrap-expect (offline)

Every subcommand takes --server/-s, --token and --ca-file (see 'shoal help').
`

// runToken dispatches `shoal token SUBCOMMAND`: one case per subcommand.
func runToken(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(errOut, tokenUsage)
		return errUsage
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "show":
		return runTokenShow(ctx, rest, out, errOut)
	case "rotate":
		return runTokenRotate(ctx, rest, out, errOut)
	case "create":
		return runTokenCreate(ctx, rest, out, errOut)
	case "generate":
		return runTokenGenerate(ctx, rest, out, errOut)
	case "-h", "--help", "help":
		fmt.Fprint(out, tokenUsage)
		return nil
	}
	fmt.Fprintf(errOut, "shoal token: unknown subcommand %q\n\n%s", sub, tokenUsage)
	return errUsage
}

// connOnly parses a subcommand that takes only the connection flags; want
// checks its positional arguments before any credential is looked up.
func connOnly(name, usageLine string, args []string, errOut io.Writer, want func([]string) error) (*api.Client, []string, error) {
	fs := newFlagSet(name, usageLine, errOut)
	var cf clientFlags
	cf.registerConn(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if err := want(pos); err != nil {
		return nil, nil, err
	}
	c, err := cf.client()
	return c, pos, err
}

func runTokenShow(ctx context.Context, args []string, out, errOut io.Writer) error {
	return runShow(ctx, "token show", args, out, errOut, (*api.Client).JoinTokens, printJoinTokens)
}

// runShow is a command NAME [--server ADDR] [-o json] that reads one
// value through fetch and prints it with print, or as indented JSON.
func runShow[T any](ctx context.Context, name string, args []string, out, errOut io.Writer,
	fetch func(*api.Client, context.Context) (T, error), print func(io.Writer, T)) error {
	fs := newFlagSet(name, name+" [--server ADDR] [-o json]", errOut)
	var cf clientFlags
	cf.registerConn(fs)
	output := fs.String("o", "", "output format: json")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return fmt.Errorf("%s takes no argument, got %q", name, pos[0])
	case *output != "" && *output != "json":
		return fmt.Errorf("-o: unsupported output format %q (use json)", *output)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	v, err := fetch(c, ctx)
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	print(out, v)
	return nil
}

func printJoinTokens(out io.Writer, t api.JoinTokens) {
	fmt.Fprintf(out, "CA fingerprint: %s\n", t.CAFingerprint)
	fmt.Fprintf(out, "Voter token:    %s\n", t.Voter)
	fmt.Fprintf(out, "Worker token:   %s\n", t.Worker)
}

func runTokenRotate(ctx context.Context, args []string, out, errOut io.Writer) error {
	c, pos, err := connOnly("token rotate", "token rotate voter|worker [--server ADDR]", args, errOut, func(pos []string) error {
		if len(pos) != 1 || (pos[0] != "voter" && pos[0] != "worker") {
			return fmt.Errorf("token rotate: want one role, voter or worker, got %q", strings.Join(pos, " "))
		}
		return nil
	})
	if err != nil {
		return err
	}
	t, err := c.RotateJoinToken(ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Rotated the %s token: the old one no longer works; agents that joined keep working.\n", pos[0])
	printJoinTokens(out, t)
	return nil
}

var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func runTokenCreate(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("token create", "token create --name NAME --role admin|read-only|write [--namespace a,b] [--ttl 720h]", errOut)
	var cf clientFlags
	cf.registerConn(fs)
	name := fs.String("name", "", "who the token is for (shown in the agents' logs and 403 messages)")
	role := fs.String("role", "", "admin (everything), read-only (reads everywhere) or write (reads and writes in --namespace)")
	namespaces := fs.String("namespace", "", "comma-separated namespaces the token is limited to")
	ttl := fs.String("ttl", defaultTokenTTL, "how long the token is valid (a Go duration, at most 87600h)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("token create takes no argument, got %q (use --name)", pos[0])
	}
	req, err := tokenRequest(*name, *role, *namespaces, *ttl)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	tok, err := c.CreateAPIToken(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, tok)
	return nil
}

// tokenRequest checks the flags of `token create`.
func tokenRequest(name, role, namespaces, ttl string) (api.APITokenRequest, error) {
	req := api.APITokenRequest{Name: name, Role: role, TTL: ttl}
	switch {
	case name == "":
		return req, fmt.Errorf("--name: required")
	case len(name) > maxTokenNameLen || !dns1123Label.MatchString(name):
		return req, fmt.Errorf("--name: %q must be lower-case letters, digits and '-', at most %d characters", name, maxTokenNameLen)
	}
	switch role {
	case "admin", "read-only", "write":
	case "":
		return req, fmt.Errorf("--role: required: admin, read-only or write")
	default:
		return req, fmt.Errorf("--role: %q is not admin, read-only or write", role)
	}
	for _, ns := range strings.Split(namespaces, ",") {
		if ns = strings.TrimSpace(ns); ns == "" {
			continue
		}
		if len(ns) > api.DNS1123LabelMaxLength || !dns1123Label.MatchString(ns) {
			return req, fmt.Errorf("--namespace: %q is not a namespace name", ns)
		}
		req.Namespaces = append(req.Namespaces, ns)
	}
	switch {
	case len(req.Namespaces) > maxTokenNamespace:
		return req, fmt.Errorf("--namespace: %d namespaces, at most %d", len(req.Namespaces), maxTokenNamespace)
	case role == "admin" && len(req.Namespaces) > 0:
		return req, fmt.Errorf("--namespace: an admin token covers every namespace; use --role write to limit it")
	}
	d, err := time.ParseDuration(ttl)
	switch {
	case err != nil:
		return req, fmt.Errorf("--ttl: %v", err)
	case d <= 0:
		return req, fmt.Errorf("--ttl: %s must be positive", ttl)
	case d > maxTokenTTL:
		return req, fmt.Errorf("--ttl: %s is longer than %s", ttl, maxTokenTTL)
	}
	return req, nil
}
