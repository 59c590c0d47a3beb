package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

const (
	// loginTimeout bounds each request of `shoal login`.
	loginTimeout = 30 * time.Second
)

// checkFingerprint normalises what a user typed as --ca-fingerprint.
func checkFingerprint(fp string) (string, error) {
	fp = strings.ToLower(strings.TrimSpace(fp))
	if len(fp) != pki.FingerprintLen {
		return "", fmt.Errorf("--ca-fingerprint: want %d characters, as `shoal token show` prints it; got %d", pki.FingerprintLen, len(fp))
	}
	for i := 0; i < len(fp); i++ {
		if c := fp[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", fmt.Errorf("--ca-fingerprint: character %d (%q) is not base32 (a-z, 2-7)", i+1, c)
		}
	}
	return fp, nil
}

// firstCert returns the DER of the first certificate in a PEM bundle.
func firstCert(caPEM []byte) ([]byte, error) {
	for rest := caPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if b.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return nil, err
			}
			return b.Bytes, nil
		}
	}
}

func runLogin(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("login", "login -s URL --token TOKEN [--ca-file FILE | --ca-fingerprint FP]", errOut)
	var servers serverList
	fs.Var(&servers, "server", "API address of any agent, or several comma-separated (default $SHOAL_ADDR)")
	fs.Var(&servers, "s", "short for --server")
	token := fs.String("token", "", "API bearer token (default $SHOAL_TOKEN)")
	caFile := fs.String("ca-file", "", "the cluster CA certificate (PEM)")
	fpFlag := fs.String("ca-fingerprint", "", "the cluster CA's fingerprint (`shoal token show`, or printed at bootstrap): the CA is fetched from the agent and kept only if it matches")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return errUsage
	}
	eps := []string(servers)
	if len(eps) == 0 {
		if eps, err = envServers(); err != nil {
			return err
		}
	}
	if len(eps) == 0 {
		return errors.New("--server (-s): required (or set SHOAL_ADDR): the agent to log in to")
	}
	if secure, err := allHTTPS(eps); err != nil {
		return fmt.Errorf("--server: %w", err)
	} else if !secure {
		return fmt.Errorf("--server: %s is plain http (an agent run with --insecure): it takes no token, there is nothing to log in to", strings.Join(eps, ","))
	}
	tok := *token
	if tok == "" {
		tok = os.Getenv(envToken)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return errors.New("--token: required (or set SHOAL_TOKEN): the API token printed at bootstrap or made by `shoal token create`")
	}
	if err := checkToken(tok); err != nil {
		return fmt.Errorf("--token: %w", err)
	}
	if *caFile != "" && *fpFlag != "" {
		return errors.New("--ca-file and --ca-fingerprint: give one, not both")
	}
	server := strings.Join(eps, ",")

	caPEM, err := pinCA(ctx, server, *caFile, *fpFlag)
	if err != nil {
		return err
	}
	der, err := firstCert(caPEM)
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}

	// The token must work against that CA.
	c, err := creds{servers: eps, token: tok, caPEM: caPEM, caFrom: "the CA"}.client(api.WithRequestTimeout(loginTimeout))
	if err != nil {
		return err
	}
	limited := false
	if _, err := c.Members(ctx); err != nil {
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code() != http.StatusForbidden {
			return fmt.Errorf("checking the token: %w", err)
		}
		limited = true // authenticated; its role may not read the members
	}

	path, err := configPath()
	if err != nil {
		return err
	}
	if err := writeConfig(path, fileConfig{Server: server, Token: tok, CA: string(caPEM)}); err != nil {
		return err
	}
	fmt.Fprintf(out, "Logged in to %s (cluster CA %s).\n", server, pki.Fingerprint(der))
	if limited {
		fmt.Fprintln(out, "The token is valid; its role may not list the cluster's members.")
	}
	fmt.Fprintf(out, "Credentials saved in %s (mode 0600).\n", path)
	return nil
}

// pinCA returns the cluster CA: read from caFile, or fetched from the
// agent without verification and kept only if its fingerprint is fp.
func pinCA(ctx context.Context, server, caFile, fp string) ([]byte, error) {
	if caFile != "" {
		b, err := readLimited(caFile, maxCABytes)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		return b, nil
	}
	want := ""
	if fp != "" {
		var err error
		if want, err = checkFingerprint(fp); err != nil {
			return nil, err
		}
	}
	// Unverified on purpose: what comes back is trusted only if its
	// fingerprint matches. No token goes on this connection.
	insecure := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	fetched, err := api.NewClient(server, api.WithTLSConfig(insecure), api.WithRequestTimeout(loginTimeout)).ClusterCA(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetching the cluster CA from %s: %w", server, err)
	}
	der, err := firstCert(fetched)
	if err != nil {
		return nil, fmt.Errorf("the CA sent by %s: %w", server, err)
	}
	got := pki.Fingerprint(der)
	switch {
	case want == "":
		return nil, fmt.Errorf("the agent at %s presents a cluster CA with fingerprint\n  %s\n"+
			"Check it against the one printed at bootstrap or by `shoal token show` on a trusted host, then run again with --ca-fingerprint %s (or give --ca-file)",
			server, got, got)
	case got != want:
		return nil, fmt.Errorf("the agent at %s presents a cluster CA with fingerprint %s, not the %s you gave: refusing it (another cluster, or an impostor)", server, got, want)
	}
	// Only the certificate that matched: anything else the agent bundled
	// with it is not pinned.
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// writeConfig writes the config file atomically: mode 0600, missing
// directories made 0700.
func writeConfig(path string, c fileConfig) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	f, err := os.CreateTemp(dir, ".config-*.json") // mode 0600
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer os.Remove(f.Name()) // no-op once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("config file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("config file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("config file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	return nil
}

func runLogout(_ context.Context, args []string, out, errOut io.Writer) error {
	flags := newFlagSet("logout", "logout", errOut)
	pos, err := parseInterspersed(flags, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		flags.Usage()
		return errUsage
	}
	path, err := configPath()
	if err != nil {
		return err
	}
	switch err := os.Remove(path); {
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(out, "Not logged in (no %s).\n", path)
	case err != nil:
		return fmt.Errorf("config file: %w", err)
	default:
		fmt.Fprintf(out, "Removed %s.\n", path)
	}
	return nil
}
