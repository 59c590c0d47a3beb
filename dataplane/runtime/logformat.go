package runtime

import (
	"bytes"
	"time"
)

// Container log files hold one record per line, the CRI's format:
//
//	<time RFC 3339, nanoseconds, UTC> <stdout|stderr> <F|P> <text>
//
// F ends a line of output (the newline itself is not kept), P is part of
// a line: a line longer than MaxLogLine, or output that ended without a
// newline; its text and the following records' make the line. Files
// written by agents before this format hold the raw output, without
// times: readers tell the two apart line by line (ParseLogRecord), so old
// files stay readable (their lines cannot be stamped nor filtered by time).

// Streams a record comes from.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// MaxLogLine is the longest text of one record; a longer line is written
// as several partial records.
const MaxLogLine = 16 << 10

// LogRecord is one parsed line of a container log.
type LogRecord struct {
	Time    time.Time
	Stream  string
	Partial bool
	// Text is the output, without the newline that ends a full line.
	Text []byte
}

// AppendLogRecord appends the line for one record to buf.
func AppendLogRecord(buf []byte, t time.Time, stream string, partial bool, text []byte) []byte {
	buf = t.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	if partial {
		buf = append(buf, " P "...)
	} else {
		buf = append(buf, " F "...)
	}
	buf = append(buf, text...)
	return append(buf, '\n')
}

// ParseLogRecord parses one line of a log file (without its newline). ok
// is false for a line that is not a record: raw output, as written by
// older agents.
func ParseLogRecord(line []byte) (r LogRecord, ok bool) {
	sp := bytes.IndexByte(line, ' ')
	// The shortest time RFC3339Nano writes is 20 bytes (no fraction).
	if sp < 20 || sp > 35 || line[4] != '-' || line[10] != 'T' {
		return r, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(line[:sp]))
	if err != nil {
		return r, false
	}
	rest := line[sp+1:]
	switch {
	case bytes.HasPrefix(rest, []byte(StreamStdout+" ")):
		r.Stream, rest = StreamStdout, rest[len(StreamStdout)+1:]
	case bytes.HasPrefix(rest, []byte(StreamStderr+" ")):
		r.Stream, rest = StreamStderr, rest[len(StreamStderr)+1:]
	default:
		return r, false
	}
	if len(rest) < 2 || rest[1] != ' ' || (rest[0] != 'F' && rest[0] != 'P') {
		return r, false
	}
	r.Time, r.Partial, r.Text = t, rest[0] == 'P', rest[2:]
	return r, true
}
