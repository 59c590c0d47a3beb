package hosts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// newServer serves h with bounded header reads.
func newServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
}

// Client is an API client for h's agent whose connections start inside
// h's namespace (so it reaches h even while h is cut off), with the
// cluster's CA and admin token and a 5 s bound per request.
func (c *Cluster) Client(h *Host) *api.Client {
	hc := &http.Client{Transport: &http.Transport{DialContext: DialIn(h.NetNSPath), MaxIdleConnsPerHost: 4,
		IdleConnTimeout: 30 * time.Second, TLSHandshakeTimeout: 5 * time.Second, ExpectContinueTimeout: 5 * time.Second}}
	return c.Creds.Client([]string{h.API()}, api.WithHTTPClient(hc), api.WithRequestTimeout(5*time.Second))
}

// authedHTTP is a raw HTTP client for h's API (TLS to the cluster CA,
// admin token), its connections starting in h's namespace.
func (c *Cluster) authedHTTP(h *Host, timeout time.Duration) *http.Client {
	tr := &http.Transport{DialContext: DialIn(h.NetNSPath), DisableKeepAlives: true, TLSHandshakeTimeout: 5 * time.Second}
	return &http.Client{Transport: c.Creds.Transport(tr), Timeout: timeout}
}

// HTTPClient is a plain HTTP client whose connections start in h's
// namespace (h's pod network, ClusterIPs as h's agent programs them).
func (c *Cluster) HTTPClient(h *Host, timeout time.Duration) *http.Client {
	return httpClient(h.NetNSPath, timeout)
}

// Get fetches url from h's namespace and returns the body; a status other
// than 200 is an error.
func (c *Cluster) Get(ctx context.Context, h *Host, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.HTTPClient(h, 5*time.Second).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s from %s: %s", url, h.Name, resp.Status)
	}
	return string(b), nil
}

// CLIEnv is the environment a `shoal` CLI needs to talk to h's agent.
func (c *Cluster) CLIEnv(h *Host) []string { return c.Creds.Env(h.API()) }

// CLI runs `shoal args...` inside h's namespace against h's agent (60 s
// at most) and returns its combined output.
func (c *Cluster) CLI(h *Host, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + h.NetNSPath, "--", c.Bin}, args...)...)
	cmd.Env = append(os.Environ(), c.CLIEnv(h)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("shoal %s (on %s): %w: %s", strings.Join(args, " "), h.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Exec runs cmd in the first container of pod (namespace ns) through h's
// agent and returns its stdout; a non-zero exit is an error with stderr.
func (c *Cluster) Exec(ctx context.Context, h *Host, ns, pod string, cmd ...string) (string, error) {
	res, err := c.Client(h).Exec(ctx, ns, pod, "", cmd)
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return res.Stdout, fmt.Errorf("exec %s in %s/%s: exit %d: %s", strings.Join(cmd, " "), ns, pod, res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return res.Stdout, nil
}

// GetFromPod fetches url from inside pod (ns) with the test program's
// `get` command (the pod's image must be testenv.TestProgram's).
func (c *Cluster) GetFromPod(ctx context.Context, h *Host, ns, pod, url string) (string, error) {
	return c.Exec(ctx, h, ns, pod, "/app", "get", url)
}

// RaftInfo is the part of /v1/cluster/raft the harness reads.
type RaftInfo struct {
	ID       string
	State    string
	LeaderID string
	Term     uint64
	Voters   []struct{ ID, Suffrage string }
}

// VoterIDs are the configuration's voters (suffrage Voter).
func (r RaftInfo) VoterIDs() []string {
	var ids []string
	for _, v := range r.Voters {
		if v.Suffrage == "Voter" {
			ids = append(ids, v.ID)
		}
	}
	return ids
}

// Raft is h's agent's view of Raft.
func (c *Cluster) Raft(ctx context.Context, h *Host) (RaftInfo, error) {
	var info RaftInfo
	raw, err := c.Client(h).ClusterRaft(ctx)
	if err != nil {
		return info, err
	}
	return info, json.Unmarshal(raw, &info)
}

// Leader asks every running agent and returns the one that says it leads
// with the highest term, and its view.
func (c *Cluster) Leader(ctx context.Context) (*Host, RaftInfo, error) {
	var best RaftInfo
	var leader *Host
	for _, h := range c.Running() {
		info, err := c.Raft(ctx, h)
		if err != nil || info.State != "Leader" {
			continue
		}
		if leader == nil || info.Term > best.Term {
			best, leader = info, h
		}
	}
	if leader == nil {
		return nil, best, errors.New("hosts: no running agent says it leads")
	}
	return leader, best, nil
}

// StableLeader is the leader once every running agent reports it as
// leader and the configuration has want voters; nil otherwise.
func (c *Cluster) StableLeader(ctx context.Context, want int) *Host {
	leader, info, err := c.Leader(ctx)
	if err != nil || len(info.VoterIDs()) != want {
		return nil
	}
	for _, h := range c.Running() {
		r, err := c.Raft(ctx, h)
		if err != nil || r.LeaderID != leader.Name {
			return nil
		}
	}
	return leader
}
