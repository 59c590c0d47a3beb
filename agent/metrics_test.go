package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// wantFamilies are the families issue 13 asks every agent to expose.
var wantFamilies = []string{
	"shoal_raft_state", "shoal_raft_term", "shoal_raft_commit_index", "shoal_raft_applied_index",
	"shoal_raft_leader_changes_total", "shoal_raft_apply_duration_seconds",
	"shoal_store_objects", "shoal_store_watchers", "shoal_store_revision",
	"shoal_api_requests_total", "shoal_api_request_duration_seconds", "shoal_api_forwarded_requests_total",
	"shoal_scheduler_attempts_total", "shoal_scheduler_duration_seconds", "shoal_scheduler_unschedulable_pods",
	"shoal_controller_queue_depth", "shoal_controller_reconcile_duration_seconds",
	"shoal_node_pods", "shoal_node_pod_start_duration_seconds", "shoal_node_image_pulls_total",
	"shoal_gossip_members", "shoal_gossip_health_score", "shoal_gossip_probes_total", "shoal_gossip_probe_failures_total",
	"shoal_proxy_sync_duration_seconds", "shoal_proxy_services", "shoal_dns_queries_total",
}

// dashboardFile is the Grafana dashboard integration/observability ships.
const dashboardFile = "../integration/observability/grafana-dashboard.json"

// scrape GETs /metrics of ta with hc and tok ("" for none) and parses it
// with Prometheus' own text parser.
func scrape(t *testing.T, ta *testAgent, hc *http.Client, tok string) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://"+ta.Addr()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return resp.StatusCode, fams
}

// sum adds a family's samples (counters, gauges; histograms by count).
func sum(f *dto.MetricFamily) float64 {
	var s float64
	for _, m := range f.GetMetric() {
		switch {
		case m.Counter != nil:
			s += m.Counter.GetValue()
		case m.Gauge != nil:
			s += m.Gauge.GetValue()
		case m.Histogram != nil:
			s += float64(m.Histogram.GetSampleCount())
		}
	}
	return s
}

// dashboardFamilies lists the shoal_ families the dashboard's queries use.
func dashboardFamilies(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	re := regexp.MustCompile(`shoal_[a-z_]+`)
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	var out []string
	for _, e := range exprs {
		for _, name := range re.FindAllString(e, -1) {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if strings.HasSuffix(name, "_seconds"+suf) {
					name = strings.TrimSuffix(name, suf)
				}
			}
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("the dashboard uses only %d shoal_ families: %v", len(out), out)
	}
	return out
}

// A running (secure) agent serves /metrics to admin and read-only tokens
// and to agent certificates, never anonymously; the answer parses with
// Prometheus' parser, has every family issue 13 asks for and every family
// the Grafana dashboard queries, and counts what happened (API requests,
// Raft applies, scheduling attempts, store objects).
func TestMetricsEndpoint(t *testing.T) {
	h := newSecureHarness(t, fastTimings)
	cfg := h.secure(h.config("m0", "z0"), pki.RoleVoter)
	cfg.BootstrapExpect = 1
	tas := h.start(cfg)
	waitUntil(t, 30*time.Second, "settled", func() string { return settled(tas, 1) })
	ta := tas[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := h.ca.token(t, "admin")
	c := ta.apiClientFor(h.ca, admin)
	// The leader makes the default namespace shortly after it is elected.
	waitUntil(t, 30*time.Second, "a first write", func() string {
		if _, err := c.Create(ctx, configMap("counted")); err != nil {
			return err.Error()
		}
		return ""
	})
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: api.PodSpec{Containers: []api.Container{{Name: "c", Image: "example.com/none:1"}}}}
	api.SetTypeMeta(pod)
	if _, err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}

	user := httpsClient(h.ca.caOnly())
	if code, _ := scrape(t, ta, user, ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without credentials: HTTP %d, want 401", code)
	}
	if code, _ := scrape(t, ta, user, "not-a-token"); code != http.StatusUnauthorized {
		t.Errorf("/metrics with a bad token: HTTP %d, want 401", code)
	}
	for _, who := range []struct {
		name string
		hc   *http.Client
		tok  string
	}{
		{"read-only token", user, h.ca.token(t, "read-only")},
		{"write token", user, h.ca.token(t, "write", "default")},
		{"admin token", user, admin},
		{"agent certificate", httpsClient(ta.cfg.TLS.ClientConfig()), ""},
	} {
		if code, _ := scrape(t, ta, who.hc, who.tok); code != http.StatusOK {
			t.Errorf("/metrics with a %s: HTTP %d, want 200", who.name, code)
		}
	}

	ro := h.ca.token(t, "read-only")
	var fams map[string]*dto.MetricFamily
	waitUntil(t, 30*time.Second, "the scheduler's attempt and the writes counted", func() string {
		_, fams = scrape(t, ta, user, ro)
		for _, f := range []string{"shoal_scheduler_attempts_total", "shoal_raft_apply_duration_seconds",
			"shoal_controller_reconcile_duration_seconds"} {
			if fams[f] == nil || sum(fams[f]) == 0 {
				return f + " is 0"
			}
		}
		return ""
	})
	for _, f := range wantFamilies {
		if fams[f] == nil {
			t.Errorf("family %s is missing", f)
		}
	}
	for _, f := range dashboardFamilies(t) {
		if fams[f] == nil {
			t.Errorf("the dashboard queries %s, which the agent does not expose", f)
		}
	}
	value := func(f string, labels map[string]string) float64 {
		for _, m := range fams[f].GetMetric() {
			ok := true
			for _, lp := range m.GetLabel() {
				if v, want := labels[lp.GetName()]; want && v != lp.GetValue() {
					ok = false
				}
			}
			if ok {
				return sum(&dto.MetricFamily{Metric: []*dto.Metric{m}})
			}
		}
		return -1
	}
	checks := []struct {
		family string
		labels map[string]string
		ok     func(float64) bool
		want   string
	}{
		{"shoal_raft_state", map[string]string{"state": "leader"}, func(v float64) bool { return v == 1 }, "1"},
		{"shoal_raft_term", nil, func(v float64) bool { return v >= 1 }, ">= 1"},
		{"shoal_raft_leader_changes_total", nil, func(v float64) bool { return v >= 1 }, ">= 1"},
		{"shoal_store_objects", map[string]string{"kind": "ConfigMap"}, func(v float64) bool { return v >= 1 }, ">= 1"},
		{"shoal_store_objects", map[string]string{"kind": "Pod"}, func(v float64) bool { return v == 1 }, "1"},
		{"shoal_store_revision", nil, func(v float64) bool { return v >= 2 }, ">= 2"},
		{"shoal_api_requests_total", map[string]string{"verb": "create", "resource": "configmaps", "code": "201"}, func(v float64) bool { return v == 1 }, "1"},
		{"shoal_api_requests_total", map[string]string{"verb": "create", "resource": "pods", "code": "201"}, func(v float64) bool { return v == 1 }, "1"},
		{"shoal_api_requests_total", map[string]string{"verb": "get", "resource": "", "code": "401"}, func(v float64) bool { return v == 2 }, "2"},
		{"shoal_gossip_members", map[string]string{"state": "alive"}, func(v float64) bool { return v == 1 }, "1"},
	}
	for _, c := range checks {
		if v := value(c.family, c.labels); !c.ok(v) {
			t.Errorf("%s%v = %v, want %s", c.family, c.labels, v, c.want)
		}
	}
	if t.Failed() {
		var names []string
		for n := range fams {
			names = append(names, n)
		}
		slices.Sort(names)
		fmt.Println("families:", names)
	}
}
