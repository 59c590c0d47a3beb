// Package clock gives the agent's loops time as an input: a Clock they are
// handed instead of calling time.Now, and Sleep, a wait that ends early when
// its context does. It must not hold any state of the agent.
package clock

import (
	"context"
	"time"
)

// Clock tells the time. Loops take one so that their tests can run on a
// fake clock.
type Clock interface {
	Now() time.Time
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Func adapts a function to a Clock.
type Func func() time.Time

// Now calls f.
func (f Func) Now() time.Time { return f() }

// Sleep waits d or until ctx ends; it reports whether the whole wait
// passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
