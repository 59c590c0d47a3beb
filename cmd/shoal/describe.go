package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/shoal-dev/shoal/api"
)

func runDescribe(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("describe", "describe KIND NAME [-n NAMESPACE]", errOut)
	var cf clientFlags
	cf.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	pos = expandRef(pos)
	if len(pos) != 2 {
		fs.Usage()
		return errUsage
	}
	k, err := resolveKind(pos[0])
	if err != nil {
		return err
	}
	ns := cf.ns()
	if !k.Namespaced {
		ns = ""
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	obj, err := c.Get(ctx, k.Kind, ns, pos[1])
	if err != nil {
		return err
	}
	now := time.Now()
	if err := describe(out, obj, now); err != nil {
		return err
	}
	if k.Kind != "Event" {
		evs, err := objectEvents(ctx, c, obj)
		printEvents(out, evs, err, now)
	}
	return nil
}

// describe prints the metadata as a header, then the rest of the object
// (spec, status, data) as YAML sections.
func describe(w io.Writer, obj api.Object, now time.Time) error {
	m := obj.GetObjectMeta()
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", m.Name)
	if m.Namespace != "" {
		fmt.Fprintf(tw, "Namespace:\t%s\n", m.Namespace)
	}
	fmt.Fprintf(tw, "Kind:\t%s\n", api.KindOf(obj))
	fmt.Fprintf(tw, "Labels:\t%s\n", formatMap(m.Labels))
	fmt.Fprintf(tw, "Annotations:\t%s\n", formatMap(m.Annotations))
	if !m.CreationTimestamp.IsZero() {
		fmt.Fprintf(tw, "Created:\t%s (%s ago)\n", m.CreationTimestamp.Format(time.RFC1123Z), api.FormatAge(m.CreationTimestamp.Time, now))
	}
	fmt.Fprintf(tw, "UID:\t%s\n", m.UID)
	fmt.Fprintf(tw, "Resource version:\t%s\n", m.ResourceVersion)
	if m.Generation != 0 {
		fmt.Fprintf(tw, "Generation:\t%d\n", m.Generation)
	}
	for _, o := range m.OwnerReferences {
		fmt.Fprintf(tw, "Controlled by:\t%s/%s\n", o.Kind, o.Name)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	var keys []string
	for key := range fields {
		switch key {
		case "apiVersion", "kind", "metadata":
			continue
		}
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool { return sectionOrder(keys[i]) < sectionOrder(keys[j]) })
	for _, key := range keys {
		y, err := yaml.JSONToYAML(fields[key])
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s%s:\n", strings.ToUpper(key[:1]), key[1:])
		for _, line := range strings.Split(strings.TrimRight(string(y), "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	return nil
}

func sectionOrder(key string) string {
	switch key {
	case "spec":
		return "0"
	case "status":
		return "9"
	}
	return "5" + key
}

func formatMap(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
