package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

var stdin io.Reader = os.Stdin

func runApply(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("apply", "apply -f FILE|- [-n NAMESPACE]", errOut)
	var cf clientFlags
	cf.register(fs)
	var files multiFlag
	fs.Var(&files, "f", "manifest file, or - for standard input (repeatable)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || len(files) == 0 {
		fs.Usage()
		return errUsage
	}
	objs, err := loadManifests(files)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var failed []string
	for _, obj := range objs {
		if cf.namespace != "" {
			setNamespace(obj, cf.namespace)
		}
		res, action, err := c.Apply(ctx, obj)
		ref := objectRef(obj)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", ref, err))
			continue
		}
		if res != nil {
			ref = objectRef(res)
		}
		fmt.Fprintf(out, "%s %s\n", ref, action)
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "\n"))
	}
	return nil
}

// loadManifests decodes every document of every file before anything is
// sent, so that a typo in the third document does not leave the first two
// applied.
func loadManifests(files []string) ([]api.Object, error) {
	var all []api.Object
	for _, f := range files {
		b, err := readManifest(f, stdin)
		if err != nil {
			return nil, err
		}
		objs, err := api.DecodeManifests(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		all = append(all, objs...)
	}
	if len(all) == 0 {
		return nil, errors.New("no objects found in the manifests")
	}
	return all, nil
}

func setNamespace(obj api.Object, ns string) {
	k, ok := api.LookupKind(api.KindOf(obj))
	if ok && k.Namespaced {
		obj.GetObjectMeta().Namespace = ns
	}
}

// objectRef prints an object as kubectl does: deployment.apps/web.
func objectRef(obj api.Object) string {
	k, _ := api.LookupKind(api.KindOf(obj))
	name := strings.ToLower(k.Kind)
	if k.Group != "" {
		name += "." + k.Group
	}
	return name + "/" + obj.GetObjectMeta().Name
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
