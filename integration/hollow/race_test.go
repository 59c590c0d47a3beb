//go:build race

package hollow

// raceEnabled: the race detector slows every agent several times over, so
// the bounded run starts fewer hollow nodes.
const raceEnabled = true
