package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// Limits of the write path.
const (
	// maxGenerateAttempts bounds retries when a generated name is taken.
	maxGenerateAttempts = 5
	// maxUpdateAttempts bounds retries of an update that gave no
	// resourceVersion and lost a race with another writer.
	maxUpdateAttempts = 5
	// maxListedInNamespaceConflict is how many remaining objects a refused
	// namespace deletion names.
	maxListedInNamespaceConflict = 5
)

// proposer turns checked requests into store operations: it fills in what
// must be identical on every replica (uid, creationTimestamp, generated
// names), checks what depends on the current state (the namespace exists,
// the update is allowed from the current object) and proposes. A request
// that fails a check never reaches the Backend.
type proposer struct {
	backend Backend
	reader  Reader
	now     func() time.Time
	// hostPathAllow and clusterCIDR feed clusterRules (policy.go).
	hostPathAllow []string
	clusterCIDR   string
}

// invalid builds the 422 for a list of field errors, or nil for none.
func invalid(info api.KindInfo, name string, fes api.FieldErrors) error {
	if len(fes) == 0 {
		return nil
	}
	return api.NewInvalid(info, name, causesOf(fes))
}

// create defaults, validates, completes and proposes a new object.
func (p *proposer) create(ctx context.Context, info api.KindInfo, obj api.Object, dryRun bool) (api.Object, error) {
	m := obj.GetObjectMeta()
	if m.ResourceVersion != "" {
		return nil, api.NewBadRequest("metadata.resourceVersion: must not be set when creating an object (got %q)", m.ResourceVersion)
	}
	api.SetDefaults(obj)
	if info.Namespaced {
		if err := p.namespaceExists(ctx, m.Namespace); err != nil {
			return nil, err
		}
	}
	generated := m.Name == "" && m.GenerateName != ""
	// obj belongs to this request and Propose only encodes it, so each
	// attempt may reuse it.
	next, nm := obj, m
	for attempt := 1; ; attempt++ {
		if generated {
			nm.Name = api.GenerateName(nm.GenerateName)
		}
		fes := api.Validate(next)
		if len(fes) == 0 {
			rules, err := p.clusterRules(ctx, next, nil)
			if err != nil {
				return nil, err
			}
			fes = rules
		}
		if err := invalid(info, nm.Name, fes); err != nil {
			return nil, err
		}
		api.PrepareCreate(next, p.now(), api.NewUID())
		if dryRun {
			return p.dryRunCreate(ctx, info, next)
		}
		res, err := p.propose(ctx, store.Op{Type: store.OpCreate, Object: next})
		if err != nil {
			return nil, err
		}
		if res.Err != nil {
			if generated && errors.Is(res.Err, store.ErrAlreadyExists) && attempt < maxGenerateAttempts {
				continue
			}
			if errors.Is(res.Err, store.ErrAlreadyExists) {
				return nil, api.NewAlreadyExists(info, nm.Name)
			}
			return nil, res.Err
		}
		return res.Object, nil
	}
}

// namespaceExists checks the local store first and, on a miss, again after
// a read barrier, so that a namespace created just before is found.
func (p *proposer) namespaceExists(ctx context.Context, ns string) error {
	key := store.Key{Kind: "Namespace", Name: ns}
	if _, err := p.reader.Get(key); err == nil {
		return nil
	}
	if err := p.backend.ReadBarrier(ctx); err != nil {
		return err
	}
	if _, err := p.reader.Get(key); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			nsInfo, _ := api.LookupKind("Namespace")
			return api.NewNotFound(nsInfo, ns)
		}
		return err
	}
	return nil
}

// update replaces an object's metadata and spec (status=false) or its
// status (status=true). With a resourceVersion in obj it is a
// compare-and-swap; without one it applies to whatever is current, after
// validating against exactly that version. admit, if not nil, checks the
// write against each version read (see nodeAdmission). With dryRun nothing
// is proposed: the answer is the object as it would be stored.
func (p *proposer) update(ctx context.Context, info api.KindInfo, obj api.Object, status bool, admit admitFunc, dryRun bool) (api.Object, error) {
	m := obj.GetObjectMeta()
	wantRV, err := m.ResourceVersionInt()
	if err != nil {
		return nil, api.NewBadRequest("%v", err)
	}
	if !status {
		api.SetDefaults(obj)
	}
	key := store.KeyOf(obj)
	key.Kind = info.Kind
	if err := p.backend.ReadBarrier(ctx); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		old, err := p.reader.Get(key)
		if err != nil {
			return nil, err
		}
		out, err := p.replace(ctx, info, obj, old, wantRV, status, admit, dryRun)
		if err != nil && wantRV == 0 && errors.Is(err, store.ErrConflict) && attempt < maxUpdateAttempts {
			continue // lost a race we did not ask to detect: validate against the new version
		}
		return out, err
	}
}

// replace is one attempt of an update against old, the version just read:
// obj replaces it if old is still at wantRV (0: whatever old is). A lost
// race comes back as an error wrapping store.ErrConflict.
func (p *proposer) replace(ctx context.Context, info api.KindInfo, obj, old api.Object, wantRV int64, status bool, admit admitFunc, dryRun bool) (api.Object, error) {
	m := obj.GetObjectMeta()
	om := old.GetObjectMeta()
	if m.UID != "" && m.UID != om.UID {
		return nil, api.NewConflict(info, m.Name, fmt.Sprintf("metadata.uid %q does not match the stored object's %q", m.UID, om.UID))
	}
	oldRV, err := om.ResourceVersionInt()
	if err != nil {
		return nil, err
	}
	if wantRV != 0 && wantRV != oldRV {
		return nil, api.NewConflict(info, m.Name, conflictMessage)
	}
	next := obj.DeepCopyObject()
	api.SetTypeMeta(next)
	nm := next.GetObjectMeta()
	// Fields the server owns keep their stored values.
	nm.UID = om.UID
	nm.CreationTimestamp = om.CreationTimestamp
	nm.DeletionTimestamp = om.DeletionTimestamp.DeepCopy()
	nm.DeletionGracePeriodSeconds = nil
	if g := om.DeletionGracePeriodSeconds; g != nil {
		v := *g
		nm.DeletionGracePeriodSeconds = &v
	}
	nm.Generation = om.Generation
	nm.ResourceVersion = strconv.FormatInt(oldRV, 10)
	if admit != nil {
		if err := admit(old, next); err != nil {
			return nil, err
		}
	}
	op := store.Op{Type: store.OpUpdate, Object: next}
	if status {
		op.Type = store.OpUpdateStatus
	} else {
		fes := api.ValidateUpdate(next, old)
		if len(fes) == 0 {
			if fes, err = p.clusterRules(ctx, next, old); err != nil {
				return nil, err
			}
		}
		if err := invalid(info, nm.Name, fes); err != nil {
			return nil, err
		}
	}
	if dryRun {
		return dryRunUpdate(old, next, status), nil
	}
	res, err := p.propose(ctx, op)
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Object, nil
}

// delete deletes an object, honouring the preconditions. A pod bound to a
// node is only marked terminating (decideDelete); a namespace that still
// holds objects is not deleted. It returns the object as it was removed, or
// as it now is when it stays. admit, if not nil, checks the deletion
// against each version read (see nodeAdmission).
func (p *proposer) delete(ctx context.Context, info api.KindInfo, key store.Key, opts api.DeleteOptions, admit admitFunc, dryRun bool) (api.Object, error) {
	pre := opts.Preconditions
	var wantRV int64
	if pre != nil && pre.ResourceVersion != nil {
		m := api.ObjectMeta{ResourceVersion: *pre.ResourceVersion}
		v, err := m.ResourceVersionInt()
		if err != nil {
			return nil, api.NewBadRequest("preconditions.resourceVersion: %q is not a non-negative integer", *pre.ResourceVersion)
		}
		wantRV = v
	}
	if g := opts.GracePeriodSeconds; g != nil && *g < 0 {
		return nil, api.NewBadRequest("gracePeriodSeconds: %d must not be negative", *g)
	}
	policy, err := propagationPolicy(opts)
	if err != nil {
		return nil, err
	}
	if err := p.backend.ReadBarrier(ctx); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		old, err := p.reader.Get(key)
		if err != nil {
			return nil, err
		}
		om := old.GetObjectMeta()
		if pre != nil && pre.UID != nil && *pre.UID != om.UID {
			return nil, api.NewConflict(info, key.Name, fmt.Sprintf("preconditions.uid %q does not match the stored object's %q", *pre.UID, om.UID))
		}
		oldRV, err := om.ResourceVersionInt()
		if err != nil {
			return nil, err
		}
		if wantRV != 0 && wantRV != oldRV {
			return nil, api.NewConflict(info, key.Name, conflictMessage)
		}
		if admit != nil {
			if err := admit(old, nil); err != nil {
				return nil, err
			}
		}
		if info.Kind == "Namespace" {
			if err := p.namespaceEmpty(key.Name); err != nil {
				return nil, err
			}
		}
		action, next := api.DecideDelete(old, opts.GracePeriodSeconds, p.now())
		var op store.Op
		switch {
		case action == api.DeleteNoop:
			return old, nil
		case dryRun && action == api.DeleteMark:
			return next, nil
		case dryRun:
			return old, nil
		}
		if policy == api.DeletePropagationOrphan && action == api.DeleteNow {
			out, err := p.orphanAndDelete(ctx, info, key, old, oldRV)
			if err != nil && wantRV == 0 && errors.Is(err, store.ErrConflict) && attempt < maxUpdateAttempts {
				continue
			}
			return out, err
		}
		switch action {
		case api.DeleteMark:
			// A compare-and-swap against the version just read, so that
			// a concurrent change is not overwritten.
			next.GetObjectMeta().ResourceVersion = strconv.FormatInt(oldRV, 10)
			op = store.Op{Type: store.OpUpdate, Object: next}
		default:
			// Pinned to the version whose uid (or, for admit, whose
			// binding) was just checked, so that an object deleted and
			// re-created in between is not removed.
			rv := wantRV
			if pre != nil && pre.UID != nil || admit != nil {
				rv = oldRV
			}
			op = store.Op{Type: store.OpDelete, Key: key, ResourceVersion: rv}
		}
		res, err := p.propose(ctx, op)
		if err != nil {
			return nil, err
		}
		if res.Err != nil {
			if wantRV == 0 && errors.Is(res.Err, store.ErrConflict) && attempt < maxUpdateAttempts {
				continue // changed meanwhile (a status write), a race the client did not ask to detect: check and decide again
			}
			return nil, res.Err
		}
		return res.Object, nil
	}
}

// namespaceEmpty refuses, with a 409, to delete a namespace that holds
// objects, naming a few of them. (The check and the delete are two steps:
// an object created in between is left behind; a later namespace
// controller cleans such objects up.)
func (p *proposer) namespaceEmpty(ns string) error {
	var left []string
	total := 0
	for _, k := range api.Kinds() {
		if !k.Namespaced || k.Kind == "Event" {
			continue // Events hold nothing open: the collector removes them within the hour
		}
		objs, _, err := p.reader.List(k.Kind, ns, store.Selector{})
		if err != nil {
			return err
		}
		total += len(objs)
		for _, o := range objs {
			if len(left) < maxListedInNamespaceConflict {
				left = append(left, fmt.Sprintf("%s/%s", k.Resource, o.GetObjectMeta().Name))
			}
		}
	}
	if total == 0 {
		return nil
	}
	more := ""
	if total > len(left) {
		more = fmt.Sprintf(" and %d more", total-len(left))
	}
	nsInfo, _ := api.LookupKind("Namespace")
	return api.NewStatusError(http.StatusConflict, api.ReasonConflict, &api.StatusDetails{Name: ns, Kind: nsInfo.Kind},
		"namespace %q still holds %d objects (%s%s); delete them first", ns, total, strings.Join(left, ", "), more)
}

// propose sends one op and returns its result.
func (p *proposer) propose(ctx context.Context, op store.Op) (store.Result, error) {
	res, err := p.backend.Propose(ctx, []store.Op{op})
	if err != nil {
		return store.Result{}, err
	}
	if len(res) != 1 {
		return store.Result{}, fmt.Errorf("backend returned %d results for 1 op", len(res))
	}
	return res[0], nil
}
