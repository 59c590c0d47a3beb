package placement

import (
	"fmt"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Plan is what a decision asks the control plane to do. The leader's loops
// apply it through Raft in one batch; placement itself never writes.
//
// Objects in a Plan are new values owned by the plan (deep copies when they
// started as store objects): the caller may encode them as they are.
type Plan struct {
	// Create lists new objects (metadata.name set, or generateName).
	Create []api.Object
	// Update lists changed objects whose metadata.resourceVersion is the
	// version the decision was made from: a concurrent change makes the
	// update fail with a conflict and the next reconcile decides again.
	Update []api.Object
	// UpdateStatus lists objects whose status changed (same versioning).
	UpdateStatus []api.Object
	// Delete lists objects to remove.
	Delete []Ref
	// Events explain the decision in words, for logs and `shoal describe`.
	Events []string
	// RequeueAfter, when positive, says that the same inputs decide
	// differently once this much time has passed (a grace running out):
	// the loop decides again then instead of at its next resync.
	RequeueAfter time.Duration
}

// Ref names one object to delete. A non-empty ResourceVersion is a
// precondition: the delete fails if the object changed since.
type Ref struct {
	Kind, Namespace, Name, UID, ResourceVersion string
	// Force removes a pod from the store at once instead of letting it
	// terminate gracefully (its node is lost: nothing there will finish
	// it).
	Force bool
}

// RefOf returns the reference to an object, with its resourceVersion.
func RefOf(obj api.Object) Ref {
	m := obj.GetObjectMeta()
	return Ref{Kind: api.KindOf(obj), Namespace: m.Namespace, Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion}
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool {
	return len(p.Create) == 0 && len(p.Update) == 0 && len(p.UpdateStatus) == 0 && len(p.Delete) == 0
}

// Merge appends q's changes to p.
func (p *Plan) Merge(q Plan) {
	p.Create = append(p.Create, q.Create...)
	p.Update = append(p.Update, q.Update...)
	p.UpdateStatus = append(p.UpdateStatus, q.UpdateStatus...)
	p.Delete = append(p.Delete, q.Delete...)
	p.Events = append(p.Events, q.Events...)
	p.RequeueAfter = sooner(p.RequeueAfter, q.RequeueAfter)
}

// sooner is the smaller positive duration of a and b (0 when neither is).
func sooner(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return max(b, 0)
	case b <= 0:
		return a
	}
	return min(a, b)
}

// String summarises the plan for logs and test failures.
func (p Plan) String() string {
	var b strings.Builder
	line := func(verb string, o api.Object) {
		m := o.GetObjectMeta()
		name := m.Name
		if name == "" {
			name = m.GenerateName + "*"
		}
		fmt.Fprintf(&b, "%s %s %s/%s\n", verb, api.KindOf(o), m.Namespace, name)
	}
	for _, o := range p.Create {
		line("create", o)
	}
	for _, o := range p.Update {
		line("update", o)
	}
	for _, o := range p.UpdateStatus {
		line("status", o)
	}
	for _, r := range p.Delete {
		fmt.Fprintf(&b, "delete %s %s/%s\n", r.Kind, r.Namespace, r.Name)
	}
	return b.String()
}
