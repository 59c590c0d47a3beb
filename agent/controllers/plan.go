package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
	"github.com/shoal-dev/shoal/placement"
)

// maxPlanOps bounds the ops of one Raft entry a controller proposes; a
// larger plan goes out in several entries.
const maxPlanOps = 512

// planOps turns a placement.Plan into store operations, filling what must
// be the same on every replica (uid, creationTimestamp, generated names)
// here on the leader, as the API's proposer does for user requests. A pod
// to delete that runs on a node terminates gracefully, as one deleted
// through the API does (api.DecideDelete): the op marks it with a
// deletionTimestamp and its agent removes it once stopped. get returns the
// current object of a reference (nil: unknown); a forced delete skips it.
func planOps(p placement.Plan, now time.Time, get func(placement.Ref) api.Object) ([]store.Op, error) {
	ops := make([]store.Op, 0, len(p.Create)+len(p.Update)+len(p.UpdateStatus)+len(p.Delete))
	for _, obj := range p.Create {
		if err := nameForCreate(obj); err != nil {
			return nil, err
		}
		api.SetDefaults(obj)
		api.PrepareCreate(obj, now, api.NewUID())
		ops = append(ops, store.Op{Type: store.OpCreate, Object: obj})
	}
	// An object the plan deletes is not also updated: the update would
	// change its resourceVersion and so fail the delete's precondition
	// (a ReplicaSet whose status the ReplicaSet controller rewrote in the
	// batch in which the garbage collector deleted it and its pods lived
	// on, and created its pods again).
	deleting := make(map[store.Key]bool, len(p.Delete))
	for _, r := range p.Delete {
		deleting[store.Key{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}] = true
	}
	for _, obj := range p.Update {
		if deleting[store.KeyOf(obj)] {
			continue
		}
		api.SetTypeMeta(obj)
		ops = append(ops, store.Op{Type: store.OpUpdate, Object: obj})
	}
	for _, obj := range p.UpdateStatus {
		if deleting[store.KeyOf(obj)] {
			continue
		}
		api.SetTypeMeta(obj)
		ops = append(ops, store.Op{Type: store.OpUpdateStatus, Object: obj})
	}
	for _, r := range p.Delete {
		if r.Kind == "Pod" && !r.Force && get != nil {
			if cur := get(r); cur != nil && cur.GetObjectMeta().UID == r.UID {
				switch action, next := api.DecideDelete(cur, nil, now); action {
				case api.DeleteNoop:
					continue
				case api.DeleteMark:
					ops = append(ops, store.Op{Type: store.OpUpdate, Object: next})
					continue
				}
			}
		}
		var rv int64
		if r.ResourceVersion != "" {
			v, err := strconv.ParseInt(r.ResourceVersion, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("plan: delete %s %s/%s: resourceVersion %q", r.Kind, r.Namespace, r.Name, r.ResourceVersion)
			}
			rv = v
		}
		ops = append(ops, store.Op{Type: store.OpDelete, Key: store.Key{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}, ResourceVersion: rv})
	}
	return ops, nil
}

// nameForCreate gives an object to create without a name one made from
// its generateName (as the API server does); it refuses an object with
// neither.
func nameForCreate(obj api.Object) error {
	m := obj.GetObjectMeta()
	if m.Name == "" {
		if m.GenerateName == "" {
			return fmt.Errorf("plan: a %s to create has neither name nor generateName", api.KindOf(obj))
		}
		m.Name = api.GenerateName(m.GenerateName)
	}
	return nil
}

// PlanResult counts what happened to a plan's ops.
type PlanResult struct {
	Applied, Conflicts, Failed int
	// FirstErr is the first failure that was not a benign race (a conflict,
	// an object already gone or already there).
	FirstErr error
	// Refused holds the keys of the ops that did not apply, so that no
	// Event claims a change that did not happen.
	Refused map[store.Key]bool
}

// applyPlan proposes a plan in entries of at most maxPlanOps. An op that
// lost a race (conflict, not found, already exists) is counted, not an
// error: the next reconcile sees the new state and decides again.
func applyPlan(ctx context.Context, b Proposer, p placement.Plan, now time.Time, get func(placement.Ref) api.Object) (PlanResult, error) {
	var out PlanResult
	ops, err := planOps(p, now, get)
	if err != nil {
		return out, err
	}
	// Every entry is queued before the first is waited for, when the
	// proposer can: they follow each other through Raft in plan order.
	// A failure to queue one leaves those after it out; the ones queued
	// are still waited for, so that the caller's view of what applied is
	// whole.
	chunks := slices.Collect(slices.Chunk(ops, maxPlanOps))
	var waits []func() ([]store.Result, error)
	var queueErr error
	if qp, ok := b.(QueuedProposer); ok {
		for _, c := range chunks {
			w, err := qp.ProposeQueued(ctx, c)
			if err != nil {
				queueErr = err
				break
			}
			waits = append(waits, w)
		}
	}
	for k, c := range chunks {
		var res []store.Result
		var err error
		switch {
		case k < len(waits):
			res, err = waits[k]()
		case queueErr != nil:
			err = queueErr
		default:
			res, err = b.Propose(ctx, c)
		}
		if err != nil {
			// Entries queued after this one may still apply:
			// their fate is known before the caller decides
			// again.
			for j := k + 1; j < len(waits); j++ {
				if res, err := waits[j](); err == nil {
					out.tally(chunks[j], res)
				}
			}
			return out, err
		}
		out.tally(c, res)
	}
	return out, nil
}

// tally counts the results of ops.
func (out *PlanResult) tally(ops []store.Op, res []store.Result) {
	for i, r := range res {
		if r.Err != nil {
			if out.Refused == nil {
				out.Refused = map[store.Key]bool{}
			}
			out.Refused[opKey(ops[i])] = true
		}
		switch {
		case r.Err == nil:
			out.Applied++
		case errors.Is(r.Err, store.ErrConflict), errors.Is(r.Err, store.ErrNotFound), errors.Is(r.Err, store.ErrAlreadyExists):
			out.Conflicts++
		default:
			out.Failed++
			if out.FirstErr == nil {
				out.FirstErr = r.Err
			}
		}
	}
}

// opKey is the key of the object an op changes.
func opKey(op store.Op) store.Key {
	if op.Object != nil {
		return store.KeyOf(op.Object)
	}
	return op.Key
}
