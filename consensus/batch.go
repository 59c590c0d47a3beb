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
// Semantics do not change: the ops of all proposals in an entry apply in
// order, each on its own, and every caller gets exactly the results of its
// own ops.

const (
	// maxInflightBatches entries may be in raft at once. Two keeps the
	// leader's disk write of one entry overlapping the replication of the
	// previous one.
	maxInflightBatches = 2
	// maxBatchOps and maxBatchBytes bound one entry; a single proposal
	// larger than that still goes out, alone.
	maxBatchOps   = 1024
	maxBatchBytes = 4 << 20
	// logCacheEntries is how many recent log entries stay in memory.
	logCacheEntries = 64
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

// runBatcher is the only goroutine that hands ApplyOpsType entries to raft.
func (n *Node) runBatcher() {
	defer close(n.batcherDone)
	for {
		var first *proposal
		select {
		case first = <-n.proposeCh:
		case <-n.shutdownCh:
			n.drainProposals()
			return
		}
		// Wait for room in raft; proposals that arrive meanwhile join
		// this entry.
		select {
		case n.inflight <- struct{}{}:
		case <-n.shutdownCh:
			first.finish(nil, ErrShutdown)
			n.drainProposals()
			return
		}
		batch := []*proposal{first}
		ops, size := first.count, len(first.body)
	gather:
		for ops < maxBatchOps && size < maxBatchBytes {
			select {
			case p := <-n.proposeCh:
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
			<-n.inflight
			continue
		}
		start := time.Now()
		f := n.raft.Apply(assembleApplyOps(count, bodies...), n.cfg.ApplyTimeout)
		go n.settle(func() error {
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
func (n *Node) settle(wait func() error, response func() any, batch []*proposal, count int) {
	err := wait()
	<-n.inflight
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

// drainProposals fails whatever is still queued at shutdown.
func (n *Node) drainProposals() {
	for {
		select {
		case p := <-n.proposeCh:
			p.finish(nil, ErrShutdown)
		default:
			return
		}
	}
}
