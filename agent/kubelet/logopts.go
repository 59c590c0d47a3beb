package kubelet

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"
)

// LogOptions are the query parameters of a pods/log request, as kubectl
// sends them.
type LogOptions struct {
	Container string
	Follow    bool
	Previous  bool
	// TailLines, if set, starts that many lines before the end.
	TailLines *int64
	// LimitBytes, if set, stops after that many bytes.
	LimitBytes *int64
	// Since (from sinceSeconds or sinceTime), if not zero, leaves out what
	// was logged before it.
	Since time.Time
	// Timestamps puts each line's time (RFC 3339, nanoseconds) first.
	Timestamps bool
}

// Limits of the log parameters.
const (
	// MaxTailLines bounds tailLines: the lines are found by reading the log
	// backwards, which is bounded by the rotated files kept anyway.
	MaxTailLines = 1 << 24
	// MaxSinceSeconds bounds sinceSeconds (ten years).
	MaxSinceSeconds = 10 * 365 * 24 * 3600
)

// ParseLogOptions reads and checks a pods/log query at now; every error
// names its parameter.
func ParseLogOptions(q url.Values, now time.Time) (LogOptions, error) {
	var o LogOptions
	o.Container = q.Get("container")
	var err error
	if o.Follow, err = boolParam(q, "follow"); err != nil {
		return o, err
	}
	if o.Previous, err = boolParam(q, "previous"); err != nil {
		return o, err
	}
	if o.Timestamps, err = boolParam(q, "timestamps"); err != nil {
		return o, err
	}
	if o.TailLines, err = intParam(q, "tailLines", 0, MaxTailLines); err != nil {
		return o, err
	}
	if o.LimitBytes, err = intParam(q, "limitBytes", 1, math.MaxInt64); err != nil {
		return o, err
	}
	secs, err := intParam(q, "sinceSeconds", 1, MaxSinceSeconds)
	if err != nil {
		return o, err
	}
	if st := q.Get("sinceTime"); st != "" {
		if secs != nil {
			return o, errors.New("query parameters sinceSeconds and sinceTime: at most one may be given")
		}
		t, err := time.Parse(time.RFC3339, st)
		if err != nil {
			return o, fmt.Errorf("query parameter sinceTime: %q is not an RFC 3339 time", st)
		}
		o.Since = t
	}
	if secs != nil {
		o.Since = now.Add(-time.Duration(*secs) * time.Second)
	}
	return o, nil
}

func boolParam(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("query parameter %s: %q is not a boolean", name, v)
	}
	return b, nil
}

func intParam(q url.Values, name string, lo, hi int64) (*int64, error) {
	v := q.Get(name)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("query parameter %s: %q is not an integer", name, v)
	}
	if n < lo || n > hi {
		return nil, fmt.Errorf("query parameter %s: %d is outside [%d, %d]", name, n, lo, hi)
	}
	return &n, nil
}
