package gossip

import "github.com/hashicorp/memberlist"

// Health is memberlist's own view of the probing, for metrics. It only
// reads.
type Health struct {
	// Score is memberlist's awareness score: 0 when this agent's probes
	// are answered in time; it rises with failed probes and missed acks
	// (memberlist then probes more slowly).
	Score int
	// Suspect counts the members memberlist currently suspects (probes
	// failed; not yet declared dead). The member table shows them as
	// Alive until they are.
	Suspect int
}

// Health reads memberlist's probe state.
func (g *Gossip) Health() Health {
	h := Health{Score: g.ml.GetHealthScore()}
	for _, n := range g.ml.Members() {
		if n.State == memberlist.StateSuspect {
			h.Suspect++
		}
	}
	return h
}
