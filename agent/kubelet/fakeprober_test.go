package kubelet

import (
	"context"
	"fmt"
	"sync"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/probe"
)

// fakeProber answers probes from a table the test changes. It also runs
// preStop hooks (exec "hook ..." or any httpGet): it notes them, and blocks
// until ctx ends when hookBlocks.
type fakeProber struct {
	mu         sync.Mutex
	fail       map[probe.Kind]bool
	note       func(string)
	hookBlocks bool
}

func (p *fakeProber) Run(ctx context.Context, pr *api.Probe, t probe.Target) probe.Result {
	if pr.HTTPGet != nil || (pr.Exec != nil && len(pr.Exec.Command) > 0 && pr.Exec.Command[0] == "hook") {
		p.mu.Lock()
		note, blocks := p.note, p.hookBlocks
		p.mu.Unlock()
		what := "prestop " + t.ContainerID
		if pr.HTTPGet != nil {
			what += fmt.Sprintf(" GET %s:%s%s", t.PodIP, pr.HTTPGet.Port.String(), pr.HTTPGet.Path)
		}
		if note != nil {
			note(what)
		}
		if blocks {
			<-ctx.Done()
			if note != nil {
				note("prestop cut " + t.ContainerID)
			}
			return probe.Result{Message: ctx.Err().Error()}
		}
		return probe.Result{Success: true}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	kind := probe.Readiness
	if pr.Exec != nil && len(pr.Exec.Command) > 0 && pr.Exec.Command[0] == "live" {
		kind = probe.Liveness
	}
	if p.fail[kind] {
		return probe.Result{Message: "failing"}
	}
	return probe.Result{Success: true}
}

func (p *fakeProber) set(kind probe.Kind, fail bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail == nil {
		p.fail = map[probe.Kind]bool{}
	}
	p.fail[kind] = fail
}
