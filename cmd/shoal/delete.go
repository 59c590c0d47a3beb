package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

func runDelete(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("delete", "delete -f FILE|-  |  delete KIND NAME... [-n NAMESPACE]", errOut)
	var cf clientFlags
	cf.register(fs)
	var files multiFlag
	fs.Var(&files, "f", "manifest file, or - for standard input (repeatable)")
	ignoreNotFound := fs.Bool("ignore-not-found", false, "treat a missing object as deleted")
	grace := fs.Int64("grace-period", -1, "seconds a pod gets to stop before its object goes (default: the pod's terminationGracePeriodSeconds; 0 needs --force)")
	force := fs.Bool("force", false, "remove pods from the store at once, without waiting for their agent to stop them")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	pos = expandRef(pos)
	type target struct {
		kind      api.KindInfo
		namespace string
		name      string
	}
	var targets []target
	switch {
	case len(files) > 0 && len(pos) == 0:
		objs, err := loadManifests(files)
		if err != nil {
			return err
		}
		for _, o := range objs {
			k, _ := api.LookupKind(api.KindOf(o))
			ns := o.GetObjectMeta().Namespace
			if cf.namespace != "" || ns == "" {
				ns = cf.ns()
			}
			targets = append(targets, target{k, ns, o.GetObjectMeta().Name})
		}
	case len(files) == 0 && len(pos) >= 2:
		k, err := resolveKind(pos[0])
		if err != nil {
			return err
		}
		for _, name := range pos[1:] {
			targets = append(targets, target{k, cf.ns(), name})
		}
	default:
		fs.Usage()
		return errUsage
	}
	var opts api.DeleteOptions
	switch {
	case *force:
		zero := int64(0)
		opts.GracePeriodSeconds = &zero
	case *grace == 0:
		return errors.New("--grace-period 0 removes pods at once: say so with --force")
	case *grace > 0:
		opts.GracePeriodSeconds = grace
	case *grace < -1:
		return fmt.Errorf("--grace-period: %d must not be negative", *grace)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var failed []string
	for _, t := range targets {
		ns := t.namespace
		if !t.kind.Namespaced {
			ns = ""
		}
		_, err := c.DeleteWithOptions(ctx, t.kind.Kind, ns, t.name, opts)
		ref := strings.ToLower(t.kind.Kind)
		if t.kind.Group != "" {
			ref += "." + t.kind.Group
		}
		ref += "/" + t.name
		if err != nil {
			if *ignoreNotFound && api.IsNotFound(err) {
				continue
			}
			failed = append(failed, fmt.Sprintf("%s: %v", ref, err))
			continue
		}
		fmt.Fprintf(out, "%s deleted\n", ref)
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "\n"))
	}
	return nil
}
