package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/shoal-dev/shoal/agent"
	"github.com/shoal-dev/shoal/api"
)

func runGet(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("get", "get KIND [NAME...] [-l SELECTOR] [-n NAMESPACE | -A] [-o wide|yaml|json]", errOut)
	var cf clientFlags
	cf.register(fs)
	selector := fs.String("l", "", "label selector, e.g. app=web,tier!=db")
	fieldSel := fs.String("field-selector", "", "field selector, e.g. spec.nodeName=host1")
	all := fs.Bool("A", false, "list across all namespaces")
	output := fs.String("o", "", "output format: wide, yaml or json")
	stale := fs.Bool("stale", false, "read the local agent's copy, possibly stale")
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
	var objs []api.Object
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
		objs, _, err = c.List(ctx, k.Kind, ns, api.ListOptions{LabelSelector: *selector, FieldSelector: *fieldSel, Stale: *stale})
		if err != nil {
			return err
		}
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
	if len(objs) == 0 {
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
	printTable(out, k, objs, *output == "wide", k.Namespaced && ns == "", tableEnv{now: time.Now(), readyEndpoints: ready})
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

// tableEnv is what rows need beyond the object: the time, and for Services
// the ready endpoints of each (nil: unknown).
type tableEnv struct {
	now            time.Time
	readyEndpoints map[string]int
}

// printTable writes objects as aligned columns, kubectl style.
func printTable(w io.Writer, k api.KindInfo, objs []api.Object, wide, withNamespace bool, env tableEnv) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	defer tw.Flush()
	header, row := columnsFor(k.Kind, wide, env)
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

// rowFunc renders one object as the cells of a table row.
type rowFunc func(api.Object) []string

// columnsFor returns the header of a kind's table and how to render a row;
// a kind without its own layout gets NAME and AGE.
func columnsFor(kind string, wide bool, env tableEnv) ([]string, rowFunc) {
	age := func(o api.Object) string { return formatAge(o.GetObjectMeta().CreationTimestamp.Time, env.now) }
	switch kind {
	case "Pod":
		return podColumns(wide, age)
	case "Deployment":
		return deploymentColumns(age)
	case "ReplicaSet":
		return replicaSetColumns(age)
	case "StatefulSet":
		return statefulSetColumns(age)
	case "DaemonSet":
		return daemonSetColumns(age)
	case "Service":
		return serviceColumns(age, env.readyEndpoints)
	case "Endpoints":
		return endpointsColumns(age)
	case "ConfigMap":
		return configMapColumns(age)
	case "Secret":
		return secretColumns(age)
	case "Node":
		return nodeColumns(wide, age)
	case "Namespace":
		return namespaceColumns(age)
	}
	return []string{"NAME", "AGE"}, func(o api.Object) []string { return []string{o.GetObjectMeta().Name, age(o)} }
}

func podColumns(wide bool, age func(api.Object) string) ([]string, rowFunc) {
	h := []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}
	if wide {
		h = append(h, "IP", "NODE")
	}
	return h, func(o api.Object) []string {
		p := o.(*api.Pod)
		ready, restarts := 0, int32(0)
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
			restarts += cs.RestartCount
		}
		r := []string{p.Name, fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), podStatus(p), fmt.Sprint(restarts), age(o)}
		if wide {
			r = append(r, orNone(p.Status.PodIP), orNone(p.Spec.NodeName))
		}
		return r
	}
}

func deploymentColumns(age func(api.Object) string) ([]string, rowFunc) {
	return []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}, func(o api.Object) []string {
		d := o.(*api.Deployment)
		return []string{d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, deref32(d.Spec.Replicas)), fmt.Sprint(d.Status.UpdatedReplicas), fmt.Sprint(d.Status.AvailableReplicas), age(o)}
	}
}

func replicaSetColumns(age func(api.Object) string) ([]string, rowFunc) {
	return []string{"NAME", "DESIRED", "CURRENT", "READY", "AGE"}, func(o api.Object) []string {
		r := o.(*api.ReplicaSet)
		return []string{r.Name, fmt.Sprint(deref32(r.Spec.Replicas)), fmt.Sprint(r.Status.Replicas), fmt.Sprint(r.Status.ReadyReplicas), age(o)}
	}
}

func statefulSetColumns(age func(api.Object) string) ([]string, rowFunc) {
	return []string{"NAME", "READY", "AGE"}, func(o api.Object) []string {
		s := o.(*api.StatefulSet)
		return []string{s.Name, fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, deref32(s.Spec.Replicas)), age(o)}
	}
}

func daemonSetColumns(age func(api.Object) string) ([]string, rowFunc) {
	return []string{"NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}, func(o api.Object) []string {
		d := o.(*api.DaemonSet)
		st := d.Status
		return []string{d.Name, fmt.Sprint(st.DesiredNumberScheduled), fmt.Sprint(st.CurrentNumberScheduled), fmt.Sprint(st.NumberReady), fmt.Sprint(st.UpdatedNumberScheduled), fmt.Sprint(st.NumberAvailable), age(o)}
	}
}

func serviceColumns(age func(api.Object) string, ready map[string]int) ([]string, rowFunc) {
	return []string{"NAME", "TYPE", "CLUSTER-IP", "PORT(S)", "ENDPOINTS", "AGE"}, func(o api.Object) []string {
		s := o.(*api.Service)
		var ports []string
		for _, p := range s.Spec.Ports {
			ps := fmt.Sprintf("%d", p.Port)
			if p.NodePort != 0 {
				ps += fmt.Sprintf(":%d", p.NodePort)
			}
			ports = append(ports, ps+"/"+p.Protocol)
		}
		eps := "?"
		if ready != nil {
			eps = strconv.Itoa(ready[s.Namespace+"/"+s.Name])
		}
		return []string{s.Name, s.Spec.Type, orNone(s.Spec.ClusterIP), orNone(strings.Join(ports, ",")), eps, age(o)}
	}
}

func endpointsColumns(age func(api.Object) string) ([]string, rowFunc) {
	return []string{"NAME", "ENDPOINTS", "AGE"}, func(o api.Object) []string {
		e := o.(*api.Endpoints)
		var eps []string
		for _, ss := range e.Subsets {
			for _, a := range ss.Addresses {
				for _, p := range ss.Ports {
					eps = append(eps, fmt.Sprintf("%s:%d", a.IP, p.Port))
				}
			}
		}
		return []string{e.Name, orNone(strings.Join(eps, ",")), age(o)}
	}
}

func configMapColumns(age func(api.Object) string) ([]string, rowFunc) {
	return []string{"NAME", "DATA", "AGE"}, func(o api.Object) []string {
		c := o.(*api.ConfigMap)
		return []string{c.Name, fmt.Sprint(len(c.Data) + len(c.BinaryData)), age(o)}
	}
}

func secretColumns(age func(api.Object) string) ([]string, rowFunc) {
	return []string{"NAME", "TYPE", "DATA", "AGE"}, func(o api.Object) []string {
		s := o.(*api.Secret)
		return []string{s.Name, s.Type, fmt.Sprint(len(s.Data)), age(o)}
	}
}

func nodeColumns(wide bool, age func(api.Object) string) ([]string, rowFunc) {
	h := []string{"NAME", "STATUS", "ROLES", "AGE"}
	if wide {
		h = append(h, "INTERNAL-IP", "POD-CIDR")
	}
	return h, func(o api.Object) []string {
		n := o.(*api.Node)
		r := []string{n.Name, nodeStatus(n), orNone(n.Status.Role), age(o)}
		if wide {
			ip := ""
			for _, a := range n.Status.Addresses {
				if a.Type == "InternalIP" {
					ip = a.Address
				}
			}
			r = append(r, orNone(ip), orNone(n.Spec.PodCIDR))
		}
		return r
	}
}

// nodeStatus is Ready, NotReady or Unknown from the Ready condition, with
// ",SchedulingDisabled" for a cordoned node.
func nodeStatus(n *api.Node) string {
	status := "Unknown"
	if c := api.FindCondition(n.Status.Conditions, api.NodeReady); c != nil {
		status = map[string]string{api.ConditionTrue: "Ready", api.ConditionFalse: "NotReady"}[c.Status]
		if status == "" {
			status = "Unknown"
		}
	}
	if n.Spec.Unschedulable {
		status += ",SchedulingDisabled"
	}
	for _, t := range n.Spec.Taints {
		if t.Key == agent.TaintNoPods {
			status += ",NoPods"
		}
	}
	return status
}

func namespaceColumns(age func(api.Object) string) ([]string, rowFunc) {
	return []string{"NAME", "STATUS", "AGE"}, func(o api.Object) []string {
		n := o.(*api.Namespace)
		return []string{n.Name, orNone(n.Status.Phase), age(o)}
	}
}

func podStatus(p *api.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason
		}
		if t := cs.State.Terminated; t != nil && t.Reason != "" && p.Status.Phase != api.PodSucceeded {
			return t.Reason
		}
	}
	if p.Status.Reason != "" {
		return p.Status.Reason
	}
	if p.Status.Phase == "" {
		return api.PodPending
	}
	return p.Status.Phase
}

func deref32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// formatAge prints a duration the way kubectl does: 45s, 12m, 5h, 3d.
func formatAge(t, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}
