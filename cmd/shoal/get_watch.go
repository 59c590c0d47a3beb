package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// watchRows follows a list with its changes after rv, one table row per
// change, as kubectl get -w does (a deletion prints the object's last row
// too). It returns when the server ends the watch or ctx ends.
func watchRows(ctx context.Context, c *api.Client, out io.Writer, k api.KindInfo, ns string, opts api.ListOptions, rv string, wide bool) error {
	ch, err := c.Watch(ctx, k.Kind, ns, opts, rv)
	if err != nil {
		return err
	}
	withNamespace := k.Namespaced && ns == ""
	for ev := range ch {
		if ev.Type == "ERROR" {
			return ev.Err
		}
		if ev.Object == nil {
			continue
		}
		_, row := api.TableColumns(k.Kind, wide, api.TableEnv{Now: time.Now()})
		cells := row(ev.Object)
		if withNamespace {
			cells = append([]string{ev.Object.GetObjectMeta().Namespace}, cells...)
		}
		tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// eventsFirst sorts a list of Events by when they last happened, as
// kubectl get events prints them; other kinds stay in the server's order.
func eventsFirst(objs []api.Object) {
	if len(objs) == 0 || api.KindOf(objs[0]) != "Event" {
		return
	}
	evs := make([]*api.Event, len(objs))
	for i, o := range objs {
		evs[i] = o.(*api.Event)
	}
	sortEvents(evs)
	for i, e := range evs {
		objs[i] = e
	}
}
