// Package events records core/v1 Events for the agent's loops: the
// scheduler and controllers on the leader, the node loop on every agent,
// the voter manager.
//
// A Recorder never blocks its caller and never fails it. Event only folds
// the event into an in-memory queue, under a mutex, and returns; a single
// writer goroutine (Run) sends the queue to a Writer (the store on the
// leader, the agent's own API elsewhere). On the way:
//
//   - Repeats are aggregated: the same object, type, reason, message and
//     source make one Event object, named deterministically from those
//     (Key), whose count grows and whose lastTimestamp moves. Repeats that
//     arrive while one is queued cost no write at all.
//   - Similar events, the same object, type, reason and source with more
//     than MaxSimilar different messages within SimilarWindow, are combined
//     into one Event "(combined from similar events): <latest message>",
//     so that a ReplicaSet creating a hundred pods writes a few objects,
//     not a hundred.
//   - Writes are rate-limited per object and globally (token buckets with
//     explicit bursts and refill periods): a crash-looping pod cannot
//     flood Raft. A queued event that must wait keeps aggregating.
//   - The queue is bounded (MaxPending, MaxPendingPerObject); what does not
//     fit is dropped and counted (Stats).
//
// The package must not talk to Raft or HTTP itself: the Writer does, and
// it decides nothing about which events to emit.
package events
