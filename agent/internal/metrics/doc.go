// Package metrics holds an agent's Prometheus metrics: one registry per
// agent (never the process-wide default, so that several agents in one test
// process do not collide), the families every part of the agent reports
// to, and the /metrics handler.
//
// Parts that count events (API requests, scheduling attempts, reconciles,
// image pulls, proxy syncs) get a small typed recorder (API, Scheduler,
// Controllers, NodeLoop, Proxy) whose methods do nothing on a nil receiver,
// so code under test runs without metrics. State that already exists
// elsewhere (Raft's indexes, the store's object counts, gossip members,
// pods by phase, DNS counters) is read when Prometheus scrapes, through
// the functions set with the Set* methods: no bookkeeping on hot paths.
//
// Every family is exposed from the first scrape on every agent, with zero
// values where a part does not run there (a non-voter has no Raft, an agent
// without pods has no node loop), so that dashboards and alerts see 0
// rather than a missing series.
//
// The package must not import the agent's other packages: they import it.
package metrics
