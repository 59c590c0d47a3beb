package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// objectEvents lists the Events about obj, oldest first, with the field
// selector kubectl describe uses: the object's name, namespace, kind and
// uid (a Node's Events carry its name as uid).
func objectEvents(ctx context.Context, c *api.Client, obj api.Object) ([]*api.Event, error) {
	ref := api.RefTo(obj)
	sel := []string{
		api.FieldInvolvedKind + "=" + ref.Kind,
		api.FieldInvolvedName + "=" + ref.Name,
		api.FieldInvolvedNamespace + "=" + ref.Namespace,
	}
	if ref.UID != "" {
		sel = append(sel, api.FieldInvolvedUID+"="+ref.UID)
	}
	objs, _, err := c.List(ctx, "Event", ref.Namespace, api.ListOptions{FieldSelector: strings.Join(sel, ",")})
	if err != nil {
		return nil, err
	}
	evs := make([]*api.Event, 0, len(objs))
	for _, o := range objs {
		evs = append(evs, o.(*api.Event))
	}
	sortEvents(evs)
	return evs, nil
}

// sortEvents orders Events by when they last happened, then by name.
func sortEvents(evs []*api.Event) {
	sort.SliceStable(evs, func(i, j int) bool {
		a, b := api.EventLastSeen(evs[i]), api.EventLastSeen(evs[j])
		if !a.Equal(b) {
			return a.Before(b)
		}
		return evs[i].Name < evs[j].Name
	})
}

// printEvents writes the Events section of describe, as kubectl does: one
// line per Event, its age "3m (x5 over 10m)" when it happened more than
// once.
func printEvents(w io.Writer, evs []*api.Event, err error, now time.Time) {
	if err != nil {
		fmt.Fprintf(w, "Events:\t<unknown: %v>\n", err)
		return
	}
	if len(evs) == 0 {
		fmt.Fprintln(w, "Events:\t<none>")
		return
	}
	fmt.Fprintln(w, "Events:")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  Type\tReason\tAge\tFrom\tMessage")
	fmt.Fprintln(tw, "  ----\t------\t----\t----\t-------")
	for _, e := range evs {
		age := api.FormatAge(api.EventLastSeen(e), now)
		if e.Count > 1 && !e.FirstTimestamp.IsZero() {
			age = fmt.Sprintf("%s (x%d over %s)", age, e.Count, api.FormatAge(e.FirstTimestamp.Time, now))
		}
		from := e.Source.Component
		if from == "" {
			from = e.ReportingComponent
		}
		if e.Source.Host != "" && from == "kubelet" {
			from += ", " + e.Source.Host
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e.Type, e.Reason, age, from, strings.TrimSpace(e.Message))
	}
	tw.Flush()
}
