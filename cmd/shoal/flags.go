package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

const defaultServer = "https://127.0.0.1:7070"

// errUsage means the flag package already printed what was wrong.
var errUsage = errors.New("usage")

// parseInterspersed parses flags that may come before, between or after the
// positional arguments, as kubectl users expect (`get pods -l app=web`).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errUsage
			}
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// clientFlags are the flags every API subcommand shares.
type clientFlags struct {
	server    serverList
	token     string
	caFile    string
	namespace string
}

// serverList is the value of --server: one agent's address or several,
// comma-separated; it is checked when the flag is parsed.
type serverList []string

func (l *serverList) String() string { return strings.Join(*l, ",") }

func (l *serverList) Set(v string) error {
	eps, err := api.ParseEndpoints(v)
	if err != nil {
		return err
	}
	*l = eps
	return nil
}

const serverUsage = "API address of any agent, or several comma-separated (the client moves to the next when one cannot be reached; a bare host:port means https); default $SHOAL_ADDR, the config file's, or " + defaultServer

// register adds the connection flags and -n/--namespace.
func (c *clientFlags) register(fs *flag.FlagSet) {
	c.registerConn(fs)
	fs.StringVar(&c.namespace, "n", "", "namespace (default \"default\")")
	fs.StringVar(&c.namespace, "namespace", "", "namespace (default \"default\")")
}

// registerConn adds the flags that say where the API is and how to
// authenticate: --server/-s, --token, --ca-file.
func (c *clientFlags) registerConn(fs *flag.FlagSet) {
	fs.Var(&c.server, "server", serverUsage)
	fs.Var(&c.server, "s", "short for --server")
	fs.StringVar(&c.token, "token", "", "API bearer token; default $SHOAL_TOKEN, the config file's, or the local agent's DATA_DIR/admin.token")
	fs.StringVar(&c.caFile, "ca-file", "", "cluster CA certificate (PEM) to verify agents with; default $SHOAL_CA_FILE, the config file's, or the local agent's DATA_DIR/tls/ca.crt")
}

// envServers reads $SHOAL_ADDR; run checks it before any command, so an
// error here cannot happen later.
func envServers() ([]string, error) {
	v := os.Getenv("SHOAL_ADDR")
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	eps, err := api.ParseEndpoints(v)
	if err != nil {
		return nil, fmt.Errorf("SHOAL_ADDR: %w", err)
	}
	return eps, nil
}

// client returns an API client for the server, token and CA found as
// creds.go describes.
func (c *clientFlags) client() (*api.Client, error) {
	cr, err := resolveCreds(credFlags{servers: c.server, token: c.token, caFile: c.caFile})
	if err != nil {
		return nil, err
	}
	return cr.client()
}

func (c *clientFlags) ns() string {
	if c.namespace == "" {
		return "default"
	}
	return c.namespace
}

func newFlagSet(name, usageLine string, errOut io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {
		fmt.Fprintf(errOut, "Usage: shoal %s\n\nFlags:\n", usageLine)
		fs.PrintDefaults()
	}
	return fs
}

// resolveKind turns what a user typed (pods, po, Pod, deploy) into a kind.
func resolveKind(s string) (api.KindInfo, error) {
	k, ok := api.LookupResource(s)
	if !ok {
		return api.KindInfo{}, fmt.Errorf("unknown resource type %q (served: %s)", s, strings.Join(api.KindNames(), ", "))
	}
	return k, nil
}

// readManifest reads FILE, or standard input for "-".
func readManifest(path string, stdin io.Reader) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, api.MaxManifestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > api.MaxManifestBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, api.MaxManifestBytes)
	}
	return b, nil
}

// expandRef turns kubectl's "kind/name" first argument into "kind name".
func expandRef(pos []string) []string {
	if len(pos) > 0 {
		if kind, name, ok := strings.Cut(pos[0], "/"); ok && kind != "" && name != "" {
			return append([]string{kind, name}, pos[1:]...)
		}
	}
	return pos
}
