package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/shoal-dev/shoal/api"
)

func runGet(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("get", "get KIND [NAME...] [-l SELECTOR] [-n NAMESPACE | -A] [-o wide|yaml|json] [-w]", errOut)
	var cf clientFlags
	cf.register(fs)
	selector := fs.String("l", "", "label selector, e.g. app=web,tier!=db")
	fieldSel := fs.String("field-selector", "", "field selector, e.g. spec.nodeName=host1")
	all := fs.Bool("A", false, "list across all namespaces")
	output := fs.String("o", "", "output format: wide, yaml or json")
	stale := fs.Bool("stale", false, "read the local agent's copy, possibly stale")
	watch := fs.Bool("w", false, "after listing, print a row for every change")
	watchTimeout := fs.Int64("watch-timeout", 0, "with -w, stop after this many seconds (0: when the server ends the watch)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	pos = expandRef(pos)
	if len(pos) == 0 {
		fs.Usage()
		return errUsage
	}
	switch *output {
	case "", "wide", "yaml", "json":
	default:
		return fmt.Errorf("-o: unsupported output format %q (use wide, yaml or json)", *output)
	}
	k, err := resolveKind(pos[0])
	if err != nil {
		return err
	}
	ns := cf.ns()
	if !k.Namespaced || *all {
		ns = ""
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if *watch && (len(pos) > 1 || *output == "json" || *output == "yaml") {
		return fmt.Errorf("-w: watch a kind as a table, without names or -o json|yaml (select with -l or --field-selector)")
	}
	var objs []api.Object
	var rv string
	if len(pos) > 1 {
		if *selector != "" {
			return fmt.Errorf("-l: a selector cannot be combined with names")
		}
		for _, name := range pos[1:] {
			o, err := c.GetWithOptions(ctx, k.Kind, ns, name, api.GetOptions{Stale: *stale})
			if err != nil {
				return err
			}
			objs = append(objs, o)
		}
	} else {
		objs, rv, err = c.List(ctx, k.Kind, ns, api.ListOptions{LabelSelector: *selector, FieldSelector: *fieldSel, Stale: *stale})
		if err != nil {
			return err
		}
		eventsFirst(objs)
	}
	single := len(pos) == 2
	switch *output {
	case "json", "yaml":
		var v any = objs
		if single {
			v = objs[0]
		} else {
			v = map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if *output == "yaml" {
			if b, err = yaml.JSONToYAML(b); err != nil {
				return err
			}
			_, err = out.Write(b)
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	if len(objs) == 0 && !*watch {
		if ns == "" {
			fmt.Fprintf(errOut, "No %s found.\n", k.Resource)
		} else {
			fmt.Fprintf(errOut, "No %s found in namespace %s.\n", k.Resource, ns)
		}
		return nil
	}
	var ready map[string]int
	if k.Kind == "Service" {
		ready = readyEndpoints(ctx, c, ns, *stale)
	}
	printTable(out, k, objs, *output == "wide", k.Namespaced && ns == "", api.TableEnv{Now: time.Now(), ReadyEndpoints: ready})
	if *watch {
		opts := api.ListOptions{LabelSelector: *selector, FieldSelector: *fieldSel, Stale: *stale, TimeoutSeconds: *watchTimeout}
		return watchRows(ctx, c, out, k, ns, opts, rv, *output == "wide")
	}
	return nil
}

// readyEndpoints counts the ready addresses of every Endpoints of ns (""
// all), by "namespace/name"; nil when they cannot be read (the column then
// says so).
func readyEndpoints(ctx context.Context, c *api.Client, ns string, stale bool) map[string]int {
	eps, _, err := c.List(ctx, "Endpoints", ns, api.ListOptions{Stale: stale})
	if err != nil {
		return nil
	}
	out := map[string]int{}
	for _, o := range eps {
		e := o.(*api.Endpoints)
		n := 0
		for _, ss := range e.Subsets {
			n += len(ss.Addresses)
		}
		out[e.Namespace+"/"+e.Name] = n
	}
	return out
}

// printTable writes objects as aligned columns, kubectl style.
func printTable(w io.Writer, k api.KindInfo, objs []api.Object, wide, withNamespace bool, env api.TableEnv) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	defer tw.Flush()
	header, row := api.TableColumns(k.Kind, wide, env)
	if withNamespace {
		header = append([]string{"NAMESPACE"}, header...)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, o := range objs {
		cells := row(o)
		if withNamespace {
			cells = append([]string{o.GetObjectMeta().Namespace}, cells...)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
}
