package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// maxOrphanRounds bounds the rounds of re-reading and rewriting dependents
// that lost a race while being orphaned.
const maxOrphanRounds = 5

// propagationPolicy reads DeleteOptions' propagationPolicy (or the older
// orphanDependents) and checks it.
func propagationPolicy(opts api.DeleteOptions) (string, error) {
	if opts.PropagationPolicy != nil {
		if opts.OrphanDependents != nil {
			return "", api.NewBadRequest("propagationPolicy and orphanDependents: set at most one")
		}
		switch p := *opts.PropagationPolicy; p {
		case api.DeletePropagationOrphan, api.DeletePropagationBackground, api.DeletePropagationForeground:
			return p, nil
		default:
			return "", api.NewBadRequest("propagationPolicy: %q is not one of Orphan, Background, Foreground", p)
		}
	}
	if opts.OrphanDependents != nil && *opts.OrphanDependents {
		return api.DeletePropagationOrphan, nil
	}
	return api.DeletePropagationBackground, nil
}

// dependentsOf lists the objects in the owner's namespace (or anywhere, for
// a cluster-scoped owner) that hold an ownerReference to its uid.
func (p *proposer) dependentsOf(owner *api.ObjectMeta) ([]api.Object, error) {
	var out []api.Object
	for _, k := range api.Kinds() {
		if owner.Namespace != "" && !k.Namespaced {
			continue // a namespaced owner has no cluster-scoped dependents
		}
		objs, _, err := p.reader.List(k.Kind, owner.Namespace, store.Selector{})
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			for _, r := range o.GetObjectMeta().OwnerReferences {
				if r.UID == owner.UID {
					out = append(out, o)
					break
				}
			}
		}
	}
	return out, nil
}

// withoutOwner returns a copy of o without its references to uid, pinned
// to the version read.
func withoutOwner(o api.Object, uid string) api.Object {
	c := o.DeepCopyObject()
	m := c.GetObjectMeta()
	refs := make([]api.OwnerReference, 0, len(m.OwnerReferences))
	for _, r := range m.OwnerReferences {
		if r.UID != uid {
			refs = append(refs, r)
		}
	}
	if len(refs) == 0 {
		refs = nil
	}
	m.OwnerReferences = refs
	return c
}

// orphanAndDelete deletes old (read at oldRV) after removing its uid from
// the ownerReferences of its dependents, so that garbage collection leaves
// them. The owner is first marked deleted (metadata.deletionTimestamp) in
// the same entry as the first round of dependents, so that its controller,
// which leaves an owner being deleted alone, does not adopt the orphans
// again; dependents that changed meanwhile are read again and orphaned in
// further rounds; then the owner is removed. A conflict marking the owner
// comes back as store.ErrConflict, for the caller to decide again.
//
// Should the agent stop between the steps, the owner stays marked and some
// dependents may keep their reference: deleting the owner again finishes.
func (p *proposer) orphanAndDelete(ctx context.Context, info api.KindInfo, key store.Key, old api.Object, oldRV int64) (api.Object, error) {
	om := old.GetObjectMeta()
	deps, err := p.dependentsOf(om)
	if err != nil {
		return nil, err
	}
	ownerRV := oldRV
	if len(deps) > 0 {
		marked := old.DeepCopyObject()
		mm := marked.GetObjectMeta()
		if mm.DeletionTimestamp == nil {
			now := api.NewTime(p.now())
			mm.DeletionTimestamp = &now
		}
		mm.ResourceVersion = strconv.FormatInt(oldRV, 10)
		ops := []store.Op{{Type: store.OpUpdate, Object: marked}}
		for _, d := range deps {
			ops = append(ops, store.Op{Type: store.OpUpdate, Object: withoutOwner(d, om.UID)})
		}
		res, err := p.backend.Propose(ctx, ops)
		if err != nil {
			return nil, err
		}
		if len(res) != len(ops) {
			return nil, fmt.Errorf("backend returned %d results for %d ops", len(res), len(ops))
		}
		if res[0].Err != nil {
			return nil, res[0].Err
		}
		if ownerRV, err = res[0].Object.GetObjectMeta().ResourceVersionInt(); err != nil {
			return nil, err
		}
		if err := p.orphanRemaining(ctx, om.UID, deps, res[1:]); err != nil {
			return nil, err
		}
	}
	res, err := p.propose(ctx, store.Op{Type: store.OpDelete, Key: key, ResourceVersion: ownerRV})
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Object, nil
}

// orphanRemaining retries the dependents whose orphaning failed with a
// conflict, reading each again; one that is gone needs nothing.
func (p *proposer) orphanRemaining(ctx context.Context, uid string, deps []api.Object, res []store.Result) error {
	for round := 1; ; round++ {
		var ops []store.Op
		for i, r := range res {
			switch {
			case r.Err == nil, errors.Is(r.Err, store.ErrNotFound):
				continue
			case !errors.Is(r.Err, store.ErrConflict):
				return fmt.Errorf("orphaning %v: %w", store.KeyOf(deps[i]), r.Err)
			}
			cur, err := p.reader.Get(store.KeyOf(deps[i]))
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			ops = append(ops, store.Op{Type: store.OpUpdate, Object: withoutOwner(cur, uid)})
		}
		if len(ops) == 0 {
			return nil
		}
		if round > maxOrphanRounds {
			return api.NewStatusError(http.StatusConflict, api.ReasonConflict, nil, "%d dependents kept changing while being orphaned; delete again", len(ops))
		}
		var err error
		res, err = p.backend.Propose(ctx, ops)
		if err != nil {
			return err
		}
		deps = deps[:0]
		for _, op := range ops {
			deps = append(deps, op.Object)
		}
	}
}
