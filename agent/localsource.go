package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/agent/follow"
	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus"
	"github.com/shoal-dev/shoal/consensus/store"
)

// localFollow is the follow.Config.Local of this agent's followers: its own
// API address is read in process, from the store the agent holds while it
// is a voter. The mirror then shares the store's objects (read-only)
// instead of decoding a second copy of every one from a watch stream over
// loopback: with 10,000 Services × 10 endpoints that copy was about 35 MiB
// of heap.
func (a *Agent) localFollow(ep string) follow.Source {
	if a.ln == nil || ep != a.ln.Addr().String() {
		return nil
	}
	return localSource{a}
}

// errLocalNotVoter: the agent no longer holds a store; the follower moves
// on to another voter.
var errLocalNotVoter = errors.New("this agent holds no replica of the store (not a voter)")

// localSource lists and watches the agent's own replica. Like the HTTP
// API on a voter, a list is linearizable unless opts.Stale, and a watch
// that asks for a revision no longer held fails with 410 Gone.
type localSource struct{ a *Agent }

// selector parses opts as the API server does.
func localSelector(kind string, opts api.ListOptions) (store.Selector, error) {
	var sel store.Selector
	if opts.LabelSelector != "" {
		ls, err := api.ParseSelector(opts.LabelSelector)
		if err != nil {
			return sel, fmt.Errorf("labelSelector: %w", err)
		}
		sel.Labels = ls
	}
	if opts.FieldSelector != "" {
		fs, err := api.ParseFieldSelector(opts.FieldSelector)
		if err != nil {
			return sel, fmt.Errorf("fieldSelector: %w", err)
		}
		sel.Fields = fs
	}
	return sel, nil
}

func (l localSource) List(ctx context.Context, kind, ns string, opts api.ListOptions) ([]api.Object, string, error) {
	n := l.a.Node()
	if n == nil {
		return nil, "", errLocalNotVoter
	}
	info, ok := api.LookupKind(kind)
	if !ok {
		return nil, "", fmt.Errorf("list: unknown kind %q", kind)
	}
	sel, err := localSelector(info.Kind, opts)
	if err != nil {
		return nil, "", err
	}
	if !opts.Stale {
		if err := l.catchUp(ctx, n); err != nil {
			return nil, "", err
		}
	}
	objs, rev, err := n.Store().List(info.Kind, ns, sel)
	if err != nil {
		return nil, "", err
	}
	return objs, strconv.FormatInt(rev, 10), nil
}

func (l localSource) Watch(ctx context.Context, kind, ns string, opts api.ListOptions, fromRV string) (<-chan api.WatchEvent, error) {
	n := l.a.Node()
	if n == nil {
		return nil, errLocalNotVoter
	}
	info, ok := api.LookupKind(kind)
	if !ok {
		return nil, fmt.Errorf("watch: unknown kind %q", kind)
	}
	sel, err := localSelector(info.Kind, opts)
	if err != nil {
		return nil, err
	}
	var from int64
	if fromRV != "" {
		if from, err = strconv.ParseInt(fromRV, 10, 64); err != nil || from < 0 {
			return nil, fmt.Errorf("watch: resourceVersion %q is not a non-negative integer", fromRV)
		}
	}
	st := n.Store()
	var initial []api.Object
	if from == 0 {
		// As over HTTP: everything that exists now, then what follows.
		if initial, from, err = st.List(info.Kind, ns, sel); err != nil {
			return nil, err
		}
	}
	w, err := st.Watch(info.Kind, ns, from, sel)
	if err != nil {
		if errors.Is(err, store.ErrTooOld) {
			return nil, api.NewGone("too old resource version: " + err.Error())
		}
		return nil, err
	}
	out := make(chan api.WatchEvent)
	go func() {
		defer close(out)
		defer w.Stop()
		send := func(ev api.WatchEvent) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for _, o := range initial {
			if !send(api.WatchEvent{Type: string(store.Added), Object: o}) {
				return
			}
		}
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events():
				if !ok {
					if werr := w.Err(); werr != nil {
						send(api.WatchEvent{Type: api.WatchEventError, Err: api.NewGone("the watch fell behind and was closed (" + werr.Error() + "); list again")})
					}
					return
				}
				if !send(api.WatchEvent{Type: string(ev.Type), Object: eventObject(ev)}) {
					return
				}
			}
		}
	}()
	return out, nil
}

// eventObject is ev's object stamped with the event's revision, copied
// only when it carries another one: stored objects are shared.
func eventObject(ev store.Event) api.Object {
	rv := strconv.FormatInt(ev.Revision, 10)
	if ev.Revision == 0 || ev.Object.GetObjectMeta().ResourceVersion == rv {
		return ev.Object
	}
	o := ev.Object.DeepCopyObject()
	o.GetObjectMeta().ResourceVersion = rv
	return o
}

// catchUp returns once the local replica holds every write committed
// before the call, so that a list from it is linearizable. The leader
// confirms that with a read barrier. A follower voter asks the leader,
// through its own API (which forwards a linearizable read), for the
// store's revision with a small list (the Namespaces), then waits until
// its replica has applied that revision: a read index, as etcd's
// followers do, which keeps the objects shared with the store instead of
// decoding the leader's copy of the whole kind.
func (l localSource) catchUp(ctx context.Context, n *consensus.Node) error {
	err := n.ReadBarrier(ctx)
	var nl *consensus.ErrNotLeader
	if !errors.As(err, &nl) {
		return err
	}
	_, rv, err := l.a.client.List(ctx, "Namespace", "", api.ListOptions{})
	if err != nil {
		return err
	}
	want, err := strconv.ParseInt(rv, 10, 64)
	if err != nil {
		return fmt.Errorf("read index: the leader's revision %q: %w", rv, err)
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for n.Store().Revision() < want {
		if l.a.Node() != n {
			return errLocalNotVoter
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
