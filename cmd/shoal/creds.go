package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

// Where the CLI finds the API server, the cluster CA and the bearer token.
// Each is looked up on its own, first found wins:
//
//  1. flags: --server (-s), --token, --ca-file
//  2. environment: SHOAL_ADDR, SHOAL_TOKEN, SHOAL_CA_FILE
//  3. the config file `shoal login` writes: $SHOAL_CONFIG, else
//     $HOME/.config/shoal/config.json (mode 0600)
//  4. the local agent's data dir ($SHOAL_DATA_DIR, else /var/lib/shoal):
//     admin.token and tls/ca.crt, when this user may read them — how
//     `shoal agent -dev` is used with no setup
//
// and the server defaults to defaultServer. An http:// server (an agent
// run with --insecure) gets no token and needs no CA.

// Limits of the credential files.
const (
	maxConfigBytes = 1 << 20
	maxTokenBytes  = 8 << 10
	maxCABytes     = 1 << 20
)

// Environment variables and files of the credentials.
const (
	envAddr    = "SHOAL_ADDR"
	envToken   = "SHOAL_TOKEN"
	envCAFile  = "SHOAL_CA_FILE"
	envConfig  = "SHOAL_CONFIG"
	envDataDir = "SHOAL_DATA_DIR"

	defaultDataDir = "/var/lib/shoal"
	dataDirToken   = "admin.token"
	dataDirCA      = "tls/ca.crt"
)

// fileConfig is the config file: JSON, written by `shoal login`. The CA is
// given either inline (ca, PEM) or as a path (caFile, relative to the
// file's directory).
type fileConfig struct {
	Server string `json:"server,omitempty"`
	Token  string `json:"token,omitempty"`
	CAFile string `json:"caFile,omitempty"`
	CA     string `json:"ca,omitempty"`
}

// configPath is where the config file is: $SHOAL_CONFIG, else
// $HOME/.config/shoal/config.json.
func configPath() (string, error) {
	if p := os.Getenv(envConfig); p != "" {
		return p, nil
	}
	home := os.Getenv("HOME")
	if home == "" {
		return "", fmt.Errorf("neither %s nor HOME is set: no place for the config file", envConfig)
	}
	return filepath.Join(home, ".config", "shoal", "config.json"), nil
}

// loadConfig reads the config file; (nil, "", nil) when there is none. A
// file that others may read or write is refused: it holds a token.
func loadConfig() (*fileConfig, string, error) {
	path, err := configPath()
	if err != nil {
		return nil, "", nil // no HOME: no config file to read
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("config file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, "", fmt.Errorf("config file %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, "", fmt.Errorf("config file %s has mode %04o: it holds a token, so group and others must have no access; run chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("config file %s: %w", path, err)
	}
	if len(b) > maxConfigBytes {
		return nil, "", fmt.Errorf("config file %s: larger than %d bytes", path, maxConfigBytes)
	}
	var c fileConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, "", fmt.Errorf("config file %s: %w (want JSON with server, token, and ca or caFile)", path, err)
	}
	if c.CA != "" && c.CAFile != "" {
		return nil, "", fmt.Errorf("config file %s: give ca or caFile, not both", path)
	}
	if c.CAFile != "" && !filepath.IsAbs(c.CAFile) {
		c.CAFile = filepath.Join(filepath.Dir(path), c.CAFile)
	}
	return &c, path, nil
}

// creds are the resolved server, token and CA, with where each came from.
type creds struct {
	servers    []string
	serverFrom string
	token      string // "" sends none
	tokenFrom  string
	caPEM      []byte
	caFrom     string
}

// credFlags are the values of the connection flags; empty means unset.
type credFlags struct {
	servers []string
	token   string
	caFile  string
}

// resolveCreds looks up server, token and CA in the order above. The
// config file is read only when a value is still missing.
func resolveCreds(fl credFlags) (creds, error) {
	var c creds
	var (
		cfg     *fileConfig
		cfgPath string
		cfgErr  error
		cfgRead bool
	)
	config := func() (*fileConfig, string, error) {
		if !cfgRead {
			cfg, cfgPath, cfgErr = loadConfig()
			cfgRead = true
		}
		return cfg, cfgPath, cfgErr
	}

	// Server.
	switch {
	case len(fl.servers) > 0:
		c.servers, c.serverFrom = fl.servers, "--server"
	default:
		eps, err := envServers()
		if err != nil {
			return c, err
		}
		if len(eps) > 0 {
			c.servers, c.serverFrom = eps, envAddr
			break
		}
		fc, path, err := config()
		if err != nil {
			return c, err
		}
		if fc != nil && fc.Server != "" {
			eps, err := api.ParseEndpoints(fc.Server)
			if err != nil {
				return c, fmt.Errorf("config file %s: server: %w", path, err)
			}
			c.servers, c.serverFrom = eps, path
			break
		}
		c.servers, c.serverFrom = []string{defaultServer}, "the default"
	}
	secure, err := allHTTPS(c.servers)
	if err != nil {
		return c, fmt.Errorf("%s: %w", c.serverFrom, err)
	}
	if !secure {
		return c, nil // plain http: an --insecure agent, no credentials
	}
	dataDir := os.Getenv(envDataDir)
	if dataDir == "" {
		dataDir = defaultDataDir
	}

	// Token.
	switch {
	case fl.token != "":
		c.token, c.tokenFrom = fl.token, "--token"
	case os.Getenv(envToken) != "":
		c.token, c.tokenFrom = os.Getenv(envToken), envToken
	default:
		fc, path, err := config()
		if err != nil {
			return c, err
		}
		if fc != nil && fc.Token != "" {
			c.token, c.tokenFrom = fc.Token, path+": token"
			break
		}
		p := filepath.Join(dataDir, dataDirToken)
		if b, ok := readIfReadable(p, maxTokenBytes); ok {
			c.token, c.tokenFrom = string(b), p
		}
	}
	if c.token != "" {
		c.token = strings.TrimSpace(c.token)
		if err := checkToken(c.token); err != nil {
			return c, fmt.Errorf("%s: %w", c.tokenFrom, err)
		}
	}

	// CA.
	switch {
	case fl.caFile != "":
		c.caFrom = "--ca-file " + fl.caFile
		c.caPEM, err = readLimited(fl.caFile, maxCABytes)
	case os.Getenv(envCAFile) != "":
		c.caFrom = envCAFile + "=" + os.Getenv(envCAFile)
		c.caPEM, err = readLimited(os.Getenv(envCAFile), maxCABytes)
	default:
		fc, path, cerr := config()
		if cerr != nil {
			return c, cerr
		}
		switch {
		case fc != nil && fc.CA != "":
			c.caPEM, c.caFrom = []byte(fc.CA), path+": ca"
		case fc != nil && fc.CAFile != "":
			c.caFrom = path + ": caFile " + fc.CAFile
			c.caPEM, err = readLimited(fc.CAFile, maxCABytes)
		default:
			p := filepath.Join(dataDir, dataDirCA)
			if b, ok := readIfReadable(p, maxCABytes); ok {
				c.caPEM, c.caFrom = b, p
			}
		}
	}
	if err != nil {
		return c, fmt.Errorf("%s: %w", c.caFrom, err)
	}
	if c.caPEM == nil {
		return c, fmt.Errorf("%s is https but no cluster CA is known to verify it: run `shoal login -s %s --token TOKEN --ca-fingerprint FP`, "+
			"or pass --ca-file (or set %s) to the cluster CA certificate, which every agent keeps in DATA_DIR/%s "+
			"(an agent run with --insecure is reached with an explicit http://)",
			strings.Join(c.servers, ","), c.servers[0], envCAFile, dataDirCA)
	}
	return c, nil
}

// allHTTPS reports whether the servers are all https (true) or all http
// (false); a mix is refused, since credentials would go in the clear.
func allHTTPS(servers []string) (bool, error) {
	var nHTTPS int
	for _, s := range servers {
		if strings.HasPrefix(s, "https://") {
			nHTTPS++
		}
	}
	if nHTTPS != 0 && nHTTPS != len(servers) {
		return false, fmt.Errorf("mixes http:// and https:// addresses (%s): agents of one cluster are all secure or all --insecure", strings.Join(servers, ","))
	}
	return nHTTPS > 0, nil
}

// checkToken refuses what cannot be a bearer token, without echoing it.
func checkToken(tok string) error {
	if len(tok) > maxTokenBytes {
		return fmt.Errorf("the token is longer than %d bytes", maxTokenBytes)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			return fmt.Errorf("the token has a space or a character that is not printable ASCII at byte %d", i)
		}
	}
	return nil
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

// readIfReadable reads a data-dir file if it exists and this user may read
// it; anything else means "not there".
func readIfReadable(path string, limit int64) ([]byte, bool) {
	b, err := readLimited(path, limit)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return nil, false
	}
	return b, true
}

// client builds the API client for resolved credentials.
func (c creds) client(opts ...api.ClientOption) (*api.Client, error) {
	if c.caPEM != nil {
		tc, err := api.TLSConfigFromCA(c.caPEM)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.caFrom, err)
		}
		opts = append(opts, api.WithTLSConfig(tc))
	}
	if c.token != "" {
		opts = append(opts, api.WithBearerToken(c.token))
	}
	return api.NewClient(strings.Join(c.servers, ","), opts...), nil
}
