package main

import (
	"strings"
	"testing"
)

func TestParseMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  string
	}{
		{"", 0, ""},
		{"off", 0, ""},
		{"120MiB", 120 << 20, ""},
		{"1GiB", 1 << 30, ""},
		{"65536KiB", 64 << 20, ""},
		{"134217728", 128 << 20, ""},
		{"134217728B", 128 << 20, ""},
		{"16MiB", 0, "below the minimum"},
		{"0", 0, "not a positive size"},
		{"-5MiB", 0, "not a positive size"},
		{"12MB", 0, "not a positive size"},
		{"lots", 0, "not a positive size"},
		{"99999999TiB", 0, "not a positive size"},
	} {
		got, err := parseMemoryLimit(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "memory-limit") {
				t.Errorf("%q: error %v, want one naming memory-limit with %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}
