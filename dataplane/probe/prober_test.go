package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// server starts a loopback HTTP server and returns its port.
func server(t *testing.T, h http.Handler) (*httptest.Server, int32) {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
	n, _ := strconv.Atoi(p)
	return s, int32(n)
}

func TestHTTPGet(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var gotHeader, gotHost, gotUA string
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		gotHeader, gotHost, gotUA = r.Header.Get("X-Probe"), r.Host, r.UserAgent()
		fmt.Fprint(w, "fine")
	})
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		fmt.Fprint(w, strings.Repeat("x", 3*MaxOutput))
	})
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/same-bad", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/bad", http.StatusFound) })
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	_, port := server(t, mux)

	p := &Prober{}
	target := Target{PodIP: "127.0.0.1", Ports: map[string]int32{"http": port}}
	get := func(path string, port api.IntOrString) *api.Probe {
		return &api.Probe{TimeoutSeconds: 1, HTTPGet: &api.HTTPGetAction{Path: path, Port: port,
			HTTPHeaders: []api.HTTPHeader{{Name: "X-Probe", Value: "yes"}, {Name: "Host", Value: "app.example"}}}}
	}
	for _, tc := range []struct {
		name    string
		probe   *api.Probe
		success bool
		msg     string
	}{
		{"200", get("/ok", api.FromInt(port)), true, ""},
		{"named port", get("/ok", api.FromString("http")), true, ""},
		{"unknown port name", get("/ok", api.FromString("metrics")), false, `port "metrics" is not a named port`},
		{"500", get("/bad", api.FromInt(port)), false, "status 500"},
		{"302 same host followed", get("/same", api.FromInt(port)), true, ""},
		{"302 same host to 500", get("/same-bad", api.FromInt(port)), false, "status 500"},
		{"302 other host not followed", get("/away", api.FromInt(port)), true, "another host"},
		{"redirect loop", get("/loop", api.FromInt(port)), false, "redirects"},
		{"slow", get("/slow", api.FromInt(port)), false, "timeout after 1s"},
		{"404", get("/missing", api.FromInt(port)), false, "status 404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := p.Run(context.Background(), tc.probe, target)
			if r.Success != tc.success || !strings.Contains(r.Message, tc.msg) {
				t.Fatalf("got %+v, want success %v and message containing %q", r, tc.success, tc.msg)
			}
			if len(r.Message) > MaxOutput+200 {
				t.Fatalf("message not bounded: %d bytes", len(r.Message))
			}
		})
	}
	if gotHeader != "yes" || gotHost != "app.example" || gotUA != userAgent {
		t.Fatalf("headers: X-Probe %q Host %q UA %q", gotHeader, gotHost, gotUA)
	}
}

func TestHTTPGetHTTPS(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(s.Close)
	_, ps, _ := net.SplitHostPort(s.Listener.Addr().String())
	port, _ := strconv.Atoi(ps)
	r := (&Prober{}).Run(context.Background(), &api.Probe{HTTPGet: &api.HTTPGetAction{Scheme: "HTTPS", Port: api.FromInt(int32(port))}},
		Target{PodIP: "127.0.0.1"})
	if !r.Success {
		t.Fatalf("https probe with a self-signed certificate: %+v", r)
	}
}

func TestTCPSocket(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open := int32(l.Addr().(*net.TCPAddr).Port)

	// A closed port: listen, note the port, close.
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := int32(l2.Addr().(*net.TCPAddr).Port)
	l2.Close()

	p := &Prober{}
	target := Target{PodIP: "127.0.0.1", Ports: map[string]int32{"svc": open}}
	tcp := func(port api.IntOrString) *api.Probe { return &api.Probe{TCPSocket: &api.TCPSocketAction{Port: port}} }
	if r := p.Run(context.Background(), tcp(api.FromInt(open)), target); !r.Success {
		t.Fatalf("open port: %+v", r)
	}
	if r := p.Run(context.Background(), tcp(api.FromString("svc")), target); !r.Success {
		t.Fatalf("named port: %+v", r)
	}
	if r := p.Run(context.Background(), tcp(api.FromInt(closed)), target); r.Success || !strings.Contains(r.Message, "refused") {
		t.Fatalf("closed port: %+v", r)
	}
	if r := p.Run(context.Background(), tcp(api.FromString("nope")), target); r.Success || !strings.Contains(r.Message, `"nope"`) {
		t.Fatalf("unknown name: %+v", r)
	}
	if r := p.Run(context.Background(), tcp(api.FromInt(0)), target); r.Success {
		t.Fatalf("port 0: %+v", r)
	}

	// A dialer that never answers: the probe's timeout applies.
	blocking := &Prober{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	if r := blocking.Run(context.Background(), tcp(api.FromInt(open)), target); r.Success || !strings.Contains(r.Message, "timeout") {
		t.Fatalf("blocking dial: %+v", r)
	}
}

func TestExec(t *testing.T) {
	var gotID string
	var gotCmd []string
	p := &Prober{Exec: func(ctx context.Context, id string, cmd []string) (int, []byte, error) {
		gotID, gotCmd = id, cmd
		switch cmd[0] {
		case "ok":
			return 0, []byte("all good\n"), nil
		case "fail":
			return 3, []byte(strings.Repeat("e", 2*MaxOutput)), nil
		case "hang":
			<-ctx.Done()
			return -1, nil, ctx.Err()
		}
		return -1, nil, errors.New("no such binary")
	}}
	target := Target{ContainerID: "c1"}
	exec := func(cmd ...string) *api.Probe { return &api.Probe{Exec: &api.ExecAction{Command: cmd}} }

	r := p.Run(context.Background(), exec("ok", "-v"), target)
	if !r.Success || r.Message != "all good" || gotID != "c1" || len(gotCmd) != 2 {
		t.Fatalf("ok: %+v id %q cmd %q", r, gotID, gotCmd)
	}
	r = p.Run(context.Background(), exec("fail"), target)
	if r.Success || !strings.Contains(r.Message, "exited with 3") || len(r.Message) > MaxOutput+100 {
		t.Fatalf("fail: success %v, %d bytes", r.Success, len(r.Message))
	}
	if r = p.Run(context.Background(), exec("hang"), target); r.Success || !strings.Contains(r.Message, "timed out") {
		t.Fatalf("hang: %+v", r)
	}
	if r = p.Run(context.Background(), exec("missing"), target); r.Success || !strings.Contains(r.Message, "could not run") {
		t.Fatalf("missing: %+v", r)
	}
	if r = (&Prober{}).Run(context.Background(), exec("ok"), target); r.Success {
		t.Fatalf("no Exec hook: %+v", r)
	}
}

func TestPortsOf(t *testing.T) {
	m := PortsOf(api.Container{Ports: []api.ContainerPort{{Name: "http", ContainerPort: 80}, {ContainerPort: 81}}})
	if len(m) != 1 || m["http"] != 80 {
		t.Fatalf("PortsOf = %v", m)
	}
}
