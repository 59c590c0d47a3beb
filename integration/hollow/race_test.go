//go:build race

package hollow

// raceEnabled: the race detector slows every agent several times over; the
// bounded run skips itself under it (make test runs it without).
const raceEnabled = true
