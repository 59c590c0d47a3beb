package gossip

// Health is memberlist's own view of the probing, for metrics. It only
// reads.
//
// It has no count of suspected members: memberlist v0.5.4 keeps a
// member's suspect state in a private field and leaves the public
// Node.State that Members returns at its zero value (alive) for every
// member, so a count read from there is always zero. Suspicions are
// counted where memberlist reports them, in go-metrics' process-wide
// counter memberlist.msg.suspect (shoal_gossip_probe_failures_total).
type Health struct {
	// Score is memberlist's awareness score: 0 when this agent's probes
	// are answered in time; it rises with failed probes and missed acks
	// (memberlist then probes more slowly).
	Score int
}

// Health reads memberlist's probe state.
func (g *Gossip) Health() Health {
	return Health{Score: g.ml.GetHealthScore()}
}
