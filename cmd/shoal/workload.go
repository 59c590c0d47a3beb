package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/placement"
)

// maxWriteAttempts bounds the read-modify-write retries on conflicts.
const maxWriteAttempts = 5

// update reads an object, lets change modify a copy, and writes it back
// with the version it read; on a conflict it reads again.
func update(ctx context.Context, c *api.Client, kind, ns, name string, change func(api.Object) error) (api.Object, error) {
	var lastErr error
	for attempt := 0; attempt < maxWriteAttempts; attempt++ {
		cur, err := c.Get(ctx, kind, ns, name)
		if err != nil {
			return nil, err
		}
		obj := cur.DeepCopyObject()
		if err := change(obj); err != nil {
			return nil, err
		}
		out, err := c.Update(ctx, obj)
		if err == nil {
			return out, nil
		}
		if !api.IsConflict(err) {
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

// splitRef accepts "deployment/web", "deployment web" or "web" with a
// default kind.
func splitRef(args []string, defaultKind string) (api.KindInfo, string, error) {
	var kind, name string
	switch {
	case len(args) == 1 && strings.Contains(args[0], "/"):
		kind, name, _ = strings.Cut(args[0], "/")
	case len(args) == 2:
		kind, name = args[0], args[1]
	case len(args) == 1 && defaultKind != "":
		kind, name = defaultKind, args[0]
	default:
		return api.KindInfo{}, "", errUsage
	}
	k, err := resolveKind(kind)
	return k, name, err
}

func runScale(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("scale", "scale KIND NAME --replicas N  (KIND: deployment, replicaset, statefulset)", errOut)
	var cf clientFlags
	cf.register(fs)
	replicas := fs.Int("replicas", -1, "the new number of replicas (required, ≥ 0)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	k, name, err := splitRef(pos, "")
	if err == errUsage || *replicas < 0 {
		fs.Usage()
		return errUsage
	}
	if err != nil {
		return err
	}
	if *replicas > 1<<20 {
		return fmt.Errorf("--replicas: %d is more than %d", *replicas, 1<<20)
	}
	n := int32(*replicas)
	c, err := cf.client()
	if err != nil {
		return err
	}
	_, err = update(ctx, c, k.Kind, cf.ns(), name, func(o api.Object) error {
		switch x := o.(type) {
		case *api.Deployment:
			x.Spec.Replicas = &n
		case *api.ReplicaSet:
			x.Spec.Replicas = &n
		case *api.StatefulSet:
			x.Spec.Replicas = &n
		default:
			return fmt.Errorf("%s cannot be scaled (deployment, replicaset and statefulset can)", k.Resource)
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s/%s scaled to %d\n", strings.ToLower(k.Kind), name, n)
	return nil
}

func runCordon(ctx context.Context, args []string, out, errOut io.Writer) error {
	return setSchedulable(ctx, "cordon", false, args, out, errOut)
}

func runUncordon(ctx context.Context, args []string, out, errOut io.Writer) error {
	return setSchedulable(ctx, "uncordon", true, args, out, errOut)
}

func setSchedulable(ctx context.Context, verb string, schedulable bool, args []string, out, errOut io.Writer) error {
	fs := newFlagSet(verb, verb+" NODE", errOut)
	var cf clientFlags
	cf.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if _, err := update(ctx, c, "Node", "", pos[0], func(o api.Object) error {
		o.(*api.Node).Spec.Unschedulable = !schedulable
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "node/%s %sed\n", pos[0], verb)
	return nil
}

func runRollout(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("rollout", "rollout status|history|undo deployment/NAME [--to-revision N] [--timeout D]", errOut)
	var cf clientFlags
	cf.register(fs)
	toRevision := fs.Int64("to-revision", 0, "undo: the revision to go back to (0: the previous one)")
	timeout := fs.Duration("timeout", 10*time.Minute, "status: give up after this long")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		fs.Usage()
		return errUsage
	}
	k, name, err := splitRef(pos[1:], "deployment")
	if err == errUsage {
		fs.Usage()
		return errUsage
	}
	if err != nil {
		return err
	}
	if k.Kind != "Deployment" {
		return fmt.Errorf("rollout works on deployments, not %s", k.Resource)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	ns := cf.ns()
	switch pos[0] {
	case "status":
		sctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return rolloutStatus(sctx, c, ns, name, out)
	case "history":
		return rolloutHistory(ctx, c, ns, name, out)
	case "undo":
		return rolloutUndo(ctx, c, ns, name, *toRevision, out)
	}
	fs.Usage()
	return errUsage
}

// rolloutState says where a rollout stands, in kubectl's words.
func rolloutState(d *api.Deployment) (done bool, msg string, err error) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if d.Generation > st.ObservedGeneration {
		return false, "Waiting for the deployment spec update to be observed...", nil
	}
	if c := api.FindCondition(st.Conditions, "Progressing"); c != nil && c.Reason == "ProgressDeadlineExceeded" {
		return false, "", fmt.Errorf("deployment %q exceeded its progress deadline", d.Name)
	}
	switch {
	case st.UpdatedReplicas < want:
		return false, fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...", d.Name, st.UpdatedReplicas, want), nil
	case st.Replicas > st.UpdatedReplicas:
		return false, fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", d.Name, st.Replicas-st.UpdatedReplicas), nil
	case st.AvailableReplicas < st.UpdatedReplicas:
		return false, fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...", d.Name, st.AvailableReplicas, st.UpdatedReplicas), nil
	}
	return true, fmt.Sprintf("deployment %q successfully rolled out", d.Name), nil
}

// rolloutStatus follows the Deployment through a watch until the rollout is
// done, fails, or ctx ends.
func rolloutStatus(ctx context.Context, c *api.Client, ns, name string, out io.Writer) error {
	var obj api.Object
	read := func() error {
		return retryUnavailable(ctx, func() (err error) {
			obj, err = c.Get(ctx, "Deployment", ns, name)
			return err
		})
	}
	if err := read(); err != nil {
		return err
	}
	last := ""
	report := func(d *api.Deployment) (bool, error) {
		done, msg, err := rolloutState(d)
		if err != nil {
			return true, err
		}
		if msg != last {
			fmt.Fprintln(out, msg)
			last = msg
		}
		return done, nil
	}
	if done, err := report(obj.(*api.Deployment)); done || err != nil {
		return err
	}
	for ctx.Err() == nil {
		var events <-chan api.WatchEvent
		err := retryUnavailable(ctx, func() (err error) {
			events, err = c.Watch(ctx, "Deployment", ns, api.ListOptions{FieldSelector: "metadata.name=" + name}, obj.GetObjectMeta().ResourceVersion)
			return err
		})
		if err != nil {
			if api.IsGone(err) {
				if err := read(); err != nil {
					return err
				}
				continue
			}
			return err
		}
		for ev := range events {
			if ev.Err != nil {
				// A watch from a revision the server no longer keeps
				// ends with a 410 ERROR event: read again and rewatch.
				if !api.IsGone(ev.Err) {
					return ev.Err
				}
				if err := read(); err != nil {
					return err
				}
				break
			}
			if ev.Type == "DELETED" {
				return fmt.Errorf("deployment %q was deleted", name)
			}
			d, ok := ev.Object.(*api.Deployment)
			if !ok {
				continue
			}
			obj = d
			if done, err := report(d); done || err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("gave up waiting for the rollout of %q: %w", name, ctx.Err())
}

// unavailableRetry is how long rollout status waits before asking again
// after a 503: the cluster is electing a leader, which takes about a
// second.
const unavailableRetry = 250 * time.Millisecond

// retryUnavailable calls fn again while it fails with a 503, until ctx
// ends (then it returns the last error).
func retryUnavailable(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil || !api.IsServiceUnavailable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(unavailableRetry):
		}
	}
}

// ownedReplicaSets lists the ReplicaSets a Deployment controls.
func ownedReplicaSets(ctx context.Context, c *api.Client, d *api.Deployment) ([]*api.ReplicaSet, error) {
	objs, _, err := c.List(ctx, "ReplicaSet", d.Namespace, api.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []*api.ReplicaSet
	for _, o := range objs {
		if ref := api.ControllerOf(o.GetObjectMeta()); ref != nil && ref.UID == d.UID {
			out = append(out, o.(*api.ReplicaSet))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return placement.Revision(&out[i].ObjectMeta) < placement.Revision(&out[j].ObjectMeta)
	})
	return out, nil
}

func rolloutHistory(ctx context.Context, c *api.Client, ns, name string, out io.Writer) error {
	obj, err := c.Get(ctx, "Deployment", ns, name)
	if err != nil {
		return err
	}
	rss, err := ownedReplicaSets(ctx, c, obj.(*api.Deployment))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tREPLICASET\tIMAGES\tREPLICAS")
	for _, rs := range rss {
		var images []string
		for _, ct := range rs.Spec.Template.Spec.Containers {
			images = append(images, ct.Image)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", strconv.FormatInt(placement.Revision(&rs.ObjectMeta), 10), rs.Name, strings.Join(images, ","), rs.Status.Replicas)
	}
	return tw.Flush()
}

// rolloutUndo puts an earlier revision's pod template back into the
// Deployment; the controller then rolls it out like any change, reusing
// that revision's ReplicaSet.
func rolloutUndo(ctx context.Context, c *api.Client, ns, name string, to int64, out io.Writer) error {
	_, err := update(ctx, c, "Deployment", ns, name, func(o api.Object) error {
		d := o.(*api.Deployment)
		rss, err := ownedReplicaSets(ctx, c, d)
		if err != nil {
			return err
		}
		tmpl, err := placement.RollbackTemplate(d, rss, to)
		if err != nil {
			if errors.Is(err, placement.ErrNoRolloutHistory) || errors.Is(err, placement.ErrRevisionNotFound) {
				return fmt.Errorf("deployment %q: %w", name, err)
			}
			return err
		}
		d.Spec.Template = *tmpl
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "deployment.apps/%s rolled back\n", name)
	return nil
}
