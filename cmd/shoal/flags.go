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

const defaultServer = "http://127.0.0.1:7070"

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
	server    string
	namespace string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "", "API address of any agent (default $SHOAL_ADDR or "+defaultServer+")")
	fs.StringVar(&c.namespace, "n", "", "namespace (default \"default\")")
	fs.StringVar(&c.namespace, "namespace", "", "namespace (default \"default\")")
}

func (c *clientFlags) client() *api.Client {
	addr := c.server
	if addr == "" {
		addr = os.Getenv("SHOAL_ADDR")
	}
	if addr == "" {
		addr = defaultServer
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return api.NewClient(addr)
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
