package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TaintNoPods marks the Node of an agent that runs no pods (--pods=false):
// the scheduler places nothing there and DaemonSets skip it. The Node
// table's STATUS column shows it as ",NoPods".
const TaintNoPods = "node.shoal.dev/no-pods"

// TableEnv is what table rows need beyond the object: the time ages are
// counted to, and for Services the ready endpoints of each by
// "namespace/name" (nil: unknown, the column then says "?").
type TableEnv struct {
	Now            time.Time
	ReadyEndpoints map[string]int
}

// RowFunc renders one object as the cells of a table row.
type RowFunc func(Object) []string

// TableColumns returns the header of a kind's table, as `shoal get` and
// the API's server-side tables print it, and how to render a row; wide adds
// the -o wide columns at the end. A kind without its own layout gets NAME
// and AGE. The row function panics if given an object of another kind.
func TableColumns(kind string, wide bool, env TableEnv) ([]string, RowFunc) {
	age := func(o Object) string { return FormatAge(o.GetObjectMeta().CreationTimestamp.Time, env.Now) }
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
		return serviceColumns(age, env.ReadyEndpoints)
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
	case "Event":
		return eventColumns(env.Now)
	}
	return []string{"NAME", "AGE"}, func(o Object) []string { return []string{o.GetObjectMeta().Name, age(o)} }
}

func podColumns(wide bool, age func(Object) string) ([]string, RowFunc) {
	h := []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}
	if wide {
		h = append(h, "IP", "NODE")
	}
	return h, func(o Object) []string {
		p := o.(*Pod)
		ready, restarts := 0, int32(0)
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
			restarts += cs.RestartCount
		}
		r := []string{p.Name, fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers)), PodStatusColumn(p), fmt.Sprint(restarts), age(o)}
		if wide {
			r = append(r, orNone(p.Status.PodIP), orNone(p.Spec.NodeName))
		}
		return r
	}
}

func deploymentColumns(age func(Object) string) ([]string, RowFunc) {
	return []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}, func(o Object) []string {
		d := o.(*Deployment)
		return []string{d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, deref32(d.Spec.Replicas)), fmt.Sprint(d.Status.UpdatedReplicas), fmt.Sprint(d.Status.AvailableReplicas), age(o)}
	}
}

func replicaSetColumns(age func(Object) string) ([]string, RowFunc) {
	return []string{"NAME", "DESIRED", "CURRENT", "READY", "AGE"}, func(o Object) []string {
		r := o.(*ReplicaSet)
		return []string{r.Name, fmt.Sprint(deref32(r.Spec.Replicas)), fmt.Sprint(r.Status.Replicas), fmt.Sprint(r.Status.ReadyReplicas), age(o)}
	}
}

func statefulSetColumns(age func(Object) string) ([]string, RowFunc) {
	return []string{"NAME", "READY", "AGE"}, func(o Object) []string {
		s := o.(*StatefulSet)
		return []string{s.Name, fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, deref32(s.Spec.Replicas)), age(o)}
	}
}

func daemonSetColumns(age func(Object) string) ([]string, RowFunc) {
	return []string{"NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}, func(o Object) []string {
		d := o.(*DaemonSet)
		st := d.Status
		return []string{d.Name, fmt.Sprint(st.DesiredNumberScheduled), fmt.Sprint(st.CurrentNumberScheduled), fmt.Sprint(st.NumberReady), fmt.Sprint(st.UpdatedNumberScheduled), fmt.Sprint(st.NumberAvailable), age(o)}
	}
}

func serviceColumns(age func(Object) string, ready map[string]int) ([]string, RowFunc) {
	return []string{"NAME", "TYPE", "CLUSTER-IP", "PORT(S)", "ENDPOINTS", "AGE"}, func(o Object) []string {
		s := o.(*Service)
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

func endpointsColumns(age func(Object) string) ([]string, RowFunc) {
	return []string{"NAME", "ENDPOINTS", "AGE"}, func(o Object) []string {
		e := o.(*Endpoints)
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

func configMapColumns(age func(Object) string) ([]string, RowFunc) {
	return []string{"NAME", "DATA", "AGE"}, func(o Object) []string {
		c := o.(*ConfigMap)
		return []string{c.Name, fmt.Sprint(len(c.Data) + len(c.BinaryData)), age(o)}
	}
}

func secretColumns(age func(Object) string) ([]string, RowFunc) {
	return []string{"NAME", "TYPE", "DATA", "AGE"}, func(o Object) []string {
		s := o.(*Secret)
		return []string{s.Name, s.Type, fmt.Sprint(len(s.Data)), age(o)}
	}
}

func nodeColumns(wide bool, age func(Object) string) ([]string, RowFunc) {
	h := []string{"NAME", "STATUS", "ROLES", "AGE"}
	if wide {
		h = append(h, "INTERNAL-IP", "POD-CIDR")
	}
	return h, func(o Object) []string {
		n := o.(*Node)
		r := []string{n.Name, NodeStatusColumn(n), orNone(n.Status.Role), age(o)}
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

// NodeStatusColumn is Ready, NotReady or Unknown from the Ready condition, with
// ",SchedulingDisabled" for a cordoned node.
func NodeStatusColumn(n *Node) string {
	status := "Unknown"
	if c := FindCondition(n.Status.Conditions, NodeReady); c != nil {
		status = map[string]string{ConditionTrue: "Ready", ConditionFalse: "NotReady"}[c.Status]
		if status == "" {
			status = "Unknown"
		}
	}
	if n.Spec.Unschedulable {
		status += ",SchedulingDisabled"
	}
	for _, t := range n.Spec.Taints {
		if t.Key == TaintNoPods {
			status += ",NoPods"
		}
	}
	return status
}

func namespaceColumns(age func(Object) string) ([]string, RowFunc) {
	return []string{"NAME", "STATUS", "AGE"}, func(o Object) []string {
		n := o.(*Namespace)
		return []string{n.Name, orNone(n.Status.Phase), age(o)}
	}
}

// PodStatusColumn is the Pod table's STATUS column, as kubectl prints it.
func PodStatusColumn(p *Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason
		}
		if t := cs.State.Terminated; t != nil && t.Reason != "" && p.Status.Phase != PodSucceeded {
			return t.Reason
		}
	}
	if p.Status.Reason != "" {
		return p.Status.Reason
	}
	if p.Status.Phase == "" {
		return PodPending
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

// FormatAge prints a duration the way kubectl does: 45s, 12m, 5h, 3d.
func FormatAge(t, now time.Time) string {
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
