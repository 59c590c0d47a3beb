package integration

// The StatefulSet half of scenario 8: ordered start, and a volume that
// outlives its pod.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/hosts"
	"github.com/shoal-dev/shoal/integration/testenv"
)

// stsManifest is a StatefulSet web of three pods (OrderedReady, the
// default), each with a node-local volume data on /data.
const stsManifest = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web-sts
  replicas: 3
  selector: {matchLabels: {app: web-sts}}
  template:
    metadata: {labels: {app: web-sts}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: c
          image: IMAGE
          args: ["serve", "--port", "8080"]
          volumeMounts: [{name: data, mountPath: /data}]
          readinessProbe:
            httpGet: {path: /healthz, port: 8080}
            periodSeconds: 1
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 16Mi}}}
`

// statefulSet applies stsManifest through h and checks that web-i is
// created only once web-(i-1) is Ready, then that web-0, deleted, comes
// back on its node with the data it wrote.
func statefulSet(t *testing.T, sc *scCluster, h *hosts.Host) {
	t.Helper()
	c := sc.Client(h)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	read := func() map[string]*api.Pod {
		objs, _, err := c.List(ctx, "Pod", "default", api.ListOptions{LabelSelector: "app=web-sts"})
		if err != nil {
			return nil
		}
		out := map[string]*api.Pod{}
		for _, o := range objs {
			out[o.(*api.Pod).Name] = o.(*api.Pod)
		}
		return out
	}
	ready := func(p *api.Pod) bool {
		if p == nil || p.DeletionTimestamp != nil || p.Status.Phase != api.PodRunning {
			return false
		}
		cd := api.FindCondition(p.Status.Conditions, api.PodReady)
		return cd != nil && cd.Status == api.ConditionTrue
	}
	name := func(i int) string { return fmt.Sprintf("web-%d", i) }

	start := time.Now()
	sc.applyManifest(t, h, strings.ReplaceAll(stsManifest, "IMAGE", sc.image))
	var pods map[string]*api.Pod
	var order []string
	testenv.WaitFor(t, 3*time.Minute, "web-0, web-1, web-2 Ready", func() bool {
		pods = read()
		for i := 0; i < 3; i++ {
			if ready(pods[name(i)]) && !hasName(order, name(i)) {
				order = append(order, name(i))
			}
		}
		// order holds the pods seen Ready so far.
		for i := 1; i < 3; i++ {
			if pods[name(i)] != nil && !hasName(order, name(i-1)) {
				t.Fatalf("%s exists while %s has not been Ready", name(i), name(i-1))
			}
		}
		return len(order) == 3
	})
	if strings.Join(order, ",") != "web-0,web-1,web-2" {
		t.Fatalf("StatefulSet pods Ready in the order %v", order)
	}
	for i := 1; i < 3; i++ {
		prev := api.FindCondition(pods[name(i-1)].Status.Conditions, api.PodReady)
		if created := pods[name(i)].CreationTimestamp; created.Before(prev.LastTransitionTime.Time) {
			t.Fatalf("%s created at %v, before %s was Ready at %v", name(i), created, name(i-1), prev.LastTransitionTime)
		}
	}
	t.Logf("StatefulSet web: web-0, web-1, web-2 Ready in order %v after apply, on %s, %s, %s", time.Since(start).Round(time.Millisecond),
		pods["web-0"].Spec.NodeName, pods["web-1"].Spec.NodeName, pods["web-2"].Spec.NodeName)

	marker := fmt.Sprintf("written by %s at %s", pods["web-0"].UID, time.Now().Format(time.RFC3339Nano))
	retry(t, "write web-0's /data/marker", func() error {
		_, err := sc.Exec(ctx, h, "default", "web-0", "/app", "write", "/data/marker", marker)
		return err
	})
	old := pods["web-0"]
	sc.cli(t, h, "delete", "pod", "web-0")
	var back *api.Pod
	testenv.WaitFor(t, 2*time.Minute, "web-0 back (a new pod) and Ready", func() bool {
		back = read()["web-0"]
		return ready(back) && back.UID != old.UID
	})
	if back.Spec.NodeName != old.Spec.NodeName {
		t.Fatalf("web-0 came back on %s, its volume is on %s", back.Spec.NodeName, old.Spec.NodeName)
	}
	var got string
	retry(t, "read web-0's /data/marker", func() (err error) {
		got, err = sc.Exec(ctx, h, "default", "web-0", "/app", "cat", "/data/marker")
		return err
	})
	if got != marker {
		t.Fatalf("web-0's /data/marker after the restart: %q, want %q", got, marker)
	}
	t.Logf("web-0 deleted and back on %s with its volume's data", back.Spec.NodeName)
}

func hasName(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}
