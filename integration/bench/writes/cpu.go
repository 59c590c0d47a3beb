package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// CPU per write: the CPU time (user + system) the servers spent during a
// load run, divided by the writes that succeeded. On a shared machine
// writes/s follow the load of everything else; the CPU a write costs the
// servers moves much less, so it tells a change's effect apart from noise.

// clockTicks is the unit of /proc/<pid>/stat's utime and stime (USER_HZ,
// 100 on Linux).
const clockTicks = 100

// cpuTicks sums utime + stime of the processes, in clock ticks; a process
// that cannot be read counts 0.
func cpuTicks(cmds []*exec.Cmd) int64 {
	var total int64
	for _, c := range cmds {
		if c == nil || c.Process == nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.Process.Pid))
		if err != nil {
			continue
		}
		// The command name (field 2) may hold spaces: count fields
		// after its closing parenthesis. utime and stime are fields 14
		// and 15, so the 12th and 13th after it.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + st
	}
	return total
}

// cpuPerWrite is the servers' CPU in microseconds per successful write
// between two cpuTicks readings.
func cpuPerWrite(before, after int64, ops int) float64 {
	if ops == 0 {
		return 0
	}
	return float64(after-before) * 1e6 / clockTicks / float64(ops)
}
