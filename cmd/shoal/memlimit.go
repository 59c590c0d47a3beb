package main

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits of --memory-limit: below the minimum the collector would run
// almost without pause; the maximum is far above any host.
const (
	minMemoryLimit = 32 << 20
	maxMemoryLimit = 1 << 50
)

// parseMemoryLimit reads --memory-limit: a number of bytes with an optional
// unit B, KiB, MiB, GiB or TiB, as GOMEMLIMIT takes; "" (the default
// policy, see memtune.go) and "off" mean no fixed limit (0).
func parseMemoryLimit(s string) (int64, error) {
	if s == "" || s == "off" {
		return 0, nil
	}
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v <= 0 || v > maxMemoryLimit/mult {
		return 0, fmt.Errorf("memory-limit: %q is not a positive size such as 120MiB or 1GiB", s)
	}
	if v*mult < minMemoryLimit {
		return 0, fmt.Errorf("memory-limit: %s is below the minimum of %d MiB", s, minMemoryLimit>>20)
	}
	return v * mult, nil
}
