package consensus

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/consensus/store"
)

// Proposal batching.
//
// Every Propose becomes part of a log entry, but not necessarily its own:
// one goroutine (runBatcher) gathers whatever proposals are waiting into a
// single ApplyOpsType entry, with at most maxInflightBatches entries handed
// to raft and not yet applied. While those are in flight, new proposals
// queue up and form the next, larger entry. Under light load an entry holds
// one proposal and goes out at once; under heavy load entries grow, so the
// per-entry costs (log encoding, a bolt insert, an AppendEntries slot, an FSM
// call, on every voter) are paid once for many writes. etcd batches its
// proposals the same way.
//
// There are two such batchers, each with its own queue and its own entries
// in flight: one for ProposeUrgent (the leader's controllers), one for
// everything else, so that a controller's plan never waits for a place
// behind a queue of the nodes' writes.
//
// Semantics do not change: the ops of all proposals in an entry apply in
// order, each on its own, and every caller gets exactly the results of its
// own ops.

const (
	// maxInflightBatches entries may be in raft at once. Two keeps the
	// leader's disk write of one entry overlapping the replication of the
	// previous one.
	maxInflightBatches = 2
	// maxInflightUrgentBatches entries of urgent proposals may be in raft
	// at once, besides the regular ones (Node.ProposeUrgent): a
	// controller's plan of thousands of ops goes out in several entries
	// (Node.ProposeUrgentQueued), and two keep its disk writes and
	// replication overlapping as for regular ones.
	maxInflightUrgentBatches = 2
	// maxBatchOps and maxBatchBytes bound one entry; a single proposal
	// larger than that still goes out, alone.
	maxBatchOps   = 1024
	maxBatchBytes = 4 << 20
	// proposeQueue is how many proposals may wait for the batcher.
	proposeQueue = 1024
)

type proposal struct {
	ctx   context.Context
	body  []byte // encodeOpsBody of the caller's ops
	count int    // number of ops in body
	done  chan proposalResult
}

type proposalResult struct {
	res []store.Result
	err error
}

func (p *proposal) finish(res []store.Result, err error) {
	p.done <- proposalResult{res: res, err: err} // buffered: never blocks
}

// batcher is one class of proposals: their queue, their tokens for entries
// in raft, and done, closed when its runBatcher ends.
type batcher struct {
	ch       chan *proposal
	inflight chan struct{}
	done     chan struct{}
}

func newBatcher(inflight int) *batcher {
	return &batcher{ch: make(chan *proposal, proposeQueue), inflight: make(chan struct{}, inflight), done: make(chan struct{})}
}

// runBatcher is the only goroutine that hands b's ApplyOpsType entries to
// raft.
func (n *Node) runBatcher(b *batcher) {
	defer close(b.done)
	for {
		var first *proposal
		select {
		case first = <-b.ch:
		case <-n.shutdownCh:
			n.drainProposals(b)
			return
		}
		// Wait for room in raft; proposals that arrive meanwhile join
		// this entry.
		select {
		case b.inflight <- struct{}{}:
		case <-n.shutdownCh:
			first.finish(nil, ErrShutdown)
			n.drainProposals(b)
			return
		}
		batch := []*proposal{first}
		ops, size := first.count, len(first.body)
	gather:
		for ops < maxBatchOps && size < maxBatchBytes {
			select {
			case p := <-b.ch:
				batch = append(batch, p)
				ops += p.count
				size += len(p.body)
			default:
				break gather
			}
		}
		// A caller that gave up before its ops were sent gets its
		// context's error; nothing of it was proposed.
		live := batch[:0]
		bodies := make([][]byte, 0, len(batch))
		count := 0
		for _, p := range batch {
			if err := p.ctx.Err(); err != nil {
				p.finish(nil, err)
				continue
			}
			live = append(live, p)
			bodies = append(bodies, p.body)
			count += p.count
		}
		if len(live) == 0 {
			<-b.inflight
			continue
		}
		start := time.Now()
		f := n.raft.Apply(assembleApplyOps(count, bodies...), n.cfg.ApplyTimeout)
		go n.settle(b, func() error {
			err := f.Error()
			if o := n.cfg.Observer; o != nil {
				o.ApplyDone(time.Since(start))
			}
			return err
		}, f.Response, live, count)
	}
}

// settle waits for one entry and hands each proposal its share of the
// results.
func (n *Node) settle(b *batcher, wait func() error, response func() any, batch []*proposal, count int) {
	err := wait()
	<-b.inflight
	if err != nil {
		err = n.translate(err)
		for _, p := range batch {
			p.finish(nil, err)
		}
		return
	}
	resp := response()
	if skipped, ok := resp.(error); ok {
		// The FSM skipped the entry on every replica: nothing applied.
		for _, p := range batch {
			p.finish(nil, skipped)
		}
		return
	}
	res, ok := resp.([]store.Result)
	if !ok || len(res) != count {
		err := fmt.Errorf("consensus: FSM returned %T with %d results for an entry of %d ops", resp, len(res), count)
		for _, p := range batch {
			p.finish(nil, err)
		}
		return
	}
	for _, p := range batch {
		p.finish(res[:p.count:p.count], nil)
		res = res[p.count:]
	}
}

// drainProposals fails whatever is still queued in b at shutdown.
func (n *Node) drainProposals(b *batcher) {
	for {
		select {
		case p := <-b.ch:
			p.finish(nil, ErrShutdown)
		default:
			return
		}
	}
}
