package kubelet

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dataplane/runtime"
)

func TestPodStatus(t *testing.T) {
	b := DefaultBackoff()
	withReadiness := func(p *api.Pod) *api.Pod {
		p.Spec.Containers[0].ReadinessProbe = &api.Probe{PeriodSeconds: 1}
		return p
	}
	type want struct {
		phase, ready, podIP string
		state               string // waiting:REASON | running | terminated:REASON:code
		last                string // "" or terminated:REASON:code
		restarts            int32
		cready              bool
	}
	cases := []struct {
		name   string
		pod    *api.Pod
		obs    *podObservation
		probes map[string]probeView
		now    time.Duration
		want   want
	}{
		{"nothing yet", testPod("Always", "a"), mkObs(), nil, 0,
			want{phase: "Pending", ready: "False", state: "waiting:ContainerCreating"}},
		{"running without probes is ready", testPod("Always", "a"), mkObs(sandbox, attempt("a", 0, runtime.StateRunning, 0, 0, 0)), nil, time.Second,
			want{phase: "Running", ready: "True", podIP: "10.244.9.2", state: "running", cready: true}},
		{"readiness probe not passed yet", withReadiness(testPod("Always", "a")), mkObs(sandbox, attempt("a", 0, runtime.StateRunning, 0, 0, 0)), nil, time.Second,
			want{phase: "Running", ready: "False", podIP: "10.244.9.2", state: "running"}},
		{"readiness probe passed", withReadiness(testPod("Always", "a")), mkObs(sandbox, attempt("a", 0, runtime.StateRunning, 0, 0, 0)),
			map[string]probeView{"a": {Ready: true, Started: true}}, time.Second,
			want{phase: "Running", ready: "True", podIP: "10.244.9.2", state: "running", cready: true}},
		{"pull failed just now", testPod("Always", "a"), mkObs(sandbox, failed("pull/a", ReasonErrImagePull, 0, 10*time.Second)), nil, 0,
			want{phase: "Pending", ready: "False", podIP: "10.244.9.2", state: "waiting:ErrImagePull"}},
		{"pull backing off", testPod("Always", "a"), mkObs(sandbox, failed("pull/a", ReasonErrImagePull, 0, 10*time.Second)), nil, time.Second,
			want{phase: "Pending", ready: "False", podIP: "10.244.9.2", state: "waiting:ImagePullBackOff"}},
		{"missing configmap", testPod("Always", "a"), mkObs(sandbox, pulled("a", 0), failed("create/a", ReasonCreateContainerConfigError, 0, time.Second)), nil, 0,
			want{phase: "Pending", ready: "False", podIP: "10.244.9.2", state: "waiting:CreateContainerConfigError"}},
		{"missing configmap volume", testPod("Always", "a"), mkObs(failed("setup-volumes", ReasonCreateContainerConfigError, 0, time.Second)), nil, 0,
			want{phase: "Pending", ready: "False", state: "waiting:CreateContainerConfigError"}},
		{"crash loop back-off", testPod("Always", "a"),
			mkObs(sandbox, attempt("a", 0, runtime.StateExited, 1, 0, time.Second), attempt("a", 1, runtime.StateExited, 1, 2*time.Second, 3*time.Second), failures("a", 1)), nil, 4 * time.Second,
			want{phase: "Running", ready: "False", podIP: "10.244.9.2", state: "waiting:CrashLoopBackOff", last: "terminated:Error:1", restarts: 1}},
		{"restarted after OOM", testPod("Always", "a"),
			mkObs(sandbox, attempt("a", 0, runtime.StateExited, 137, 0, time.Second), func(o *podObservation) { o.Containers["a"].Attempts[0].OOMKilled = true },
				attempt("a", 1, runtime.StateRunning, 0, 2*time.Second, 0)), nil, 4 * time.Second,
			want{phase: "Running", ready: "True", podIP: "10.244.9.2", state: "running", last: "terminated:OOMKilled:137", restarts: 1, cready: true}},
		{"Never: completed", testPod("Never", "a"), mkObs(sandbox, attempt("a", 0, runtime.StateExited, 0, 0, time.Second)), nil, time.Minute,
			want{phase: "Succeeded", ready: "False", podIP: "10.244.9.2", state: "terminated:Completed:0"}},
		{"Never: failed", testPod("Never", "a", "b"),
			mkObs(sandbox, attempt("a", 0, runtime.StateExited, 0, 0, time.Second), attempt("b", 0, runtime.StateExited, 3, 0, time.Second)), nil, time.Minute,
			want{phase: "Failed", ready: "False", podIP: "10.244.9.2", state: "terminated:Completed:0"}},
		{"Never: one still running", testPod("Never", "a", "b"),
			mkObs(sandbox, attempt("a", 0, runtime.StateExited, 0, 0, time.Second), attempt("b", 0, runtime.StateRunning, 0, 0, 0)), nil, time.Minute,
			want{phase: "Running", ready: "False", podIP: "10.244.9.2", state: "terminated:Completed:0"}},
		{"created, not started", testPod("Always", "a"), mkObs(sandbox, attempt("a", 0, runtime.StateCreated, 0, -1, 0)), nil, 0,
			want{phase: "Pending", ready: "False", podIP: "10.244.9.2", state: "waiting:ContainerCreating"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := podStatus(tc.pod, statusInput{Obs: tc.obs, Probes: tc.probes, HostIP: "192.168.1.5", Now: t0.Add(tc.now), Backoff: b})
			if st.Phase != tc.want.phase {
				t.Errorf("phase %s, want %s", st.Phase, tc.want.phase)
			}
			if c := api.FindCondition(st.Conditions, api.PodReady); c == nil || c.Status != tc.want.ready {
				t.Errorf("Ready condition %+v, want %s", c, tc.want.ready)
			}
			if c := api.FindCondition(st.Conditions, api.PodScheduled); c == nil || c.Status != "True" {
				t.Errorf("PodScheduled %+v", c)
			}
			if st.PodIP != tc.want.podIP || st.HostIP != "192.168.1.5" {
				t.Errorf("podIP %q hostIP %q", st.PodIP, st.HostIP)
			}
			cs := st.ContainerStatuses[0]
			if got := stateString(cs.State); got != tc.want.state {
				t.Errorf("state %s, want %s", got, tc.want.state)
			}
			if got := stateString(cs.LastState); got != tc.want.last {
				t.Errorf("last state %s, want %s", got, tc.want.last)
			}
			if cs.RestartCount != tc.want.restarts || cs.Ready != tc.want.cready {
				t.Errorf("restarts %d ready %v, want %d %v", cs.RestartCount, cs.Ready, tc.want.restarts, tc.want.cready)
			}
			if st.StartTime == nil || !st.StartTime.Equal(t0.Add(tc.now).Truncate(time.Second)) {
				t.Errorf("startTime %v", st.StartTime)
			}
		})
	}
}

func stateString(s api.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return "waiting:" + s.Waiting.Reason
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return "terminated:" + s.Terminated.Reason + ":" + itoa(int(s.Terminated.ExitCode))
	}
	return ""
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// Conditions keep their transition time while their status holds, and the
// start time once set, so a status recomputed later is equal and not
// written again.
func TestPodStatusStable(t *testing.T) {
	pod := testPod("Always", "a")
	obs := mkObs(sandbox, attempt("a", 0, runtime.StateRunning, 0, 0, 0))
	first := podStatus(pod, statusInput{Obs: obs, Now: t0, Backoff: DefaultBackoff()})
	later := podStatus(pod, statusInput{Obs: obs, Prev: first, Now: t0.Add(time.Hour), Backoff: DefaultBackoff()})
	a, _ := json.Marshal(first)
	b, _ := json.Marshal(later)
	if string(a) != string(b) {
		t.Fatalf("status changed with time alone:\n%s\n%s", a, b)
	}
	// Through a JSON round trip (what the store gives back) too.
	var stored api.PodStatus
	if err := json.Unmarshal(a, &stored); err != nil {
		t.Fatal(err)
	}
	again := podStatus(pod, statusInput{Obs: obs, Prev: stored, Now: t0.Add(2 * time.Hour), Backoff: DefaultBackoff()})
	if c, _ := json.Marshal(again); string(c) != string(a) {
		t.Fatalf("status changed after a round trip:\n%s\n%s", a, c)
	}
	// A readiness change moves the Ready transition time.
	pod.Spec.Containers[0].ReadinessProbe = &api.Probe{}
	nr := podStatus(pod, statusInput{Obs: obs, Prev: first, Now: t0.Add(time.Hour), Backoff: DefaultBackoff()})
	if c := api.FindCondition(nr.Conditions, api.PodReady); c.Status != "False" || !c.LastTransitionTime.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Ready %+v", c)
	}
}
