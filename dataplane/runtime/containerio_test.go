package runtime

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLogRecordFormat: records parse back to what was written; raw lines
// (older agents' files) and near misses are not records.
func TestLogRecordFormat(t *testing.T) {
	at := time.Date(2026, 11, 30, 6, 50, 11, 123456000, time.FixedZone("x", 3600))
	line := AppendLogRecord(nil, at, StreamStderr, true, []byte("a b  c"))
	if string(line) != "2026-11-30T05:50:11.123456Z stderr P a b  c\n" {
		t.Fatalf("record %q", line)
	}
	r, ok := ParseLogRecord(bytes.TrimSuffix(line, []byte("\n")))
	if !ok || !r.Time.Equal(at) || r.Stream != StreamStderr || !r.Partial || string(r.Text) != "a b  c" {
		t.Fatalf("parsed %+v %v", r, ok)
	}
	if r, ok := ParseLogRecord([]byte("2026-11-30T05:50:11Z stdout F ")); !ok || len(r.Text) != 0 || r.Partial {
		t.Fatalf("empty line: %+v %v", r, ok)
	}
	for _, raw := range []string{"", "hello world", "listening on :8080", "tick 3",
		"2026-11-30T05:50:11Z stdin F x", "2026-11-30T05:50:11Z stdout X x", "2026-11-30T05:50:11Z stdout F",
		"2026-13-30T05:50:11Z stdout F x", "2026-11-30 05:50:11 stdout F x"} {
		if _, ok := ParseLogRecord([]byte(raw)); ok {
			t.Errorf("%q parsed as a record", raw)
		}
	}
}

// TestLogLinesSplit: full lines become F records, a line longer than
// MaxLogLine becomes P records then an F, and an unfinished line waits.
func TestLogLinesSplit(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	c := &containerIO{log: f}
	long := strings.Repeat("x", MaxLogLine+10)
	rest := c.logLines(StreamStdout, []byte("one\n\n"+long+"\nunfinished"))
	if string(rest) != "unfinished" {
		t.Fatalf("rest %q", rest)
	}
	data, _ := os.ReadFile(f.Name())
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		r, ok := ParseLogRecord([]byte(l))
		if !ok {
			t.Fatalf("not a record: %q", l)
		}
		tag := "F"
		if r.Partial {
			tag = "P"
		}
		got = append(got, tag+":"+string(r.Text[:min(len(r.Text), 3)])+":"+strings.Repeat("+", len(r.Text)/MaxLogLine))
	}
	if want := []string{"F:one:", "F::", "P:xxx:+", "F:xxx:"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("records %v, want %v", got, want)
	}
}

// recordRE is one record of a container log.
var recordRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (stdout|stderr) [FP] `)

// TestContainerLogRecordsAttachAndResume: the output is logged as
// records with the stream it came on; Attach gets output from now on;
// after an agent restart the new runtime reads the FIFOs again, so records
// keep coming and attach works.
func TestContainerLogRecordsAttachAndResume(t *testing.T) {
	r := newRuntime(t)
	c := ctx(t)
	s := spec(t, r, "records", "echo", "to-out", "echo-err", "to-err", "tick", "50ms")
	if err := r.Create(c, s); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(c, "records"); err != nil {
		t.Fatal(err)
	}
	waitState(t, r, "records", StateRunning)
	waitFor(t, 30*time.Second, func() bool {
		data, _ := os.ReadFile(s.LogPath)
		return strings.Contains(string(data), "tick 1\n") && strings.Contains(string(data), " stderr F to-err\n")
	})
	data, _ := os.ReadFile(s.LogPath)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for _, l := range lines {
		if !recordRE.MatchString(l) {
			t.Fatalf("not a record: %q", l)
		}
	}
	// The two streams are read apart, so their records interleave in any
	// order (under load stdout's ticks may come before stderr's line);
	// within a stream the order holds: to-out before the first tick.
	var stdout []string
	errLine := false
	for _, l := range lines {
		if strings.Contains(l, " stdout F ") {
			stdout = append(stdout, l)
		}
		errLine = errLine || strings.HasSuffix(l, " stderr F to-err")
	}
	if len(stdout) == 0 || !strings.HasSuffix(stdout[0], " stdout F to-out") || !errLine {
		t.Fatalf("records %q: want stdout's to-out first and stderr's to-err", lines)
	}
	attachTicks := func(r *Runtime) {
		t.Helper()
		pr, pw := io.Pipe()
		actx, cancel := c, func() {}
		go func() {
			_ = r.Attach(actx, "records", AttachIO{Stdout: pw})
			pw.Close()
		}()
		defer cancel()
		buf := make([]byte, 64)
		n, err := pr.Read(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), "tick ") {
			t.Fatalf("attach: %q %v", buf[:n], err)
		}
		pr.Close()
	}
	attachTicks(r)

	r.Close() // the agent goes away
	size := func() int64 {
		fi, _ := os.Stat(s.LogPath)
		return fi.Size()
	}
	before := size()
	r2 := newRuntime(t)
	if st, _ := statusOf(t, r2, "records"); st.State != StateRunning {
		t.Fatalf("after restart: %+v", st)
	}
	waitFor(t, 30*time.Second, func() bool { return size() > before+200 })
	attachTicks(r2)
	if err := r2.Attach(c, "records", AttachIO{Stdin: strings.NewReader("x")}); err == nil {
		t.Fatal("stdin to a container without stdin was accepted")
	}
}

// TestContainerStdin: a container with stdin gets what an attach session
// sends; with StdinOnce the session's end closes it (cat then prints and
// exits), and the session gets the output until the container ends.
func TestContainerStdin(t *testing.T) {
	r := newRuntime(t)
	c := ctx(t)
	s := spec(t, r, "stdin", "cat", "/dev/stdin")
	s.Stdin, s.StdinOnce = true, true
	if err := r.Create(c, s); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(c, "stdin"); err != nil {
		t.Fatal(err)
	}
	waitState(t, r, "stdin", StateRunning)
	var out syncBuffer
	if err := r.Attach(c, "stdin", AttachIO{Stdin: strings.NewReader("typed line\n"), Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "typed line\n" {
		t.Fatalf("attach output %q", out.String())
	}
	st := waitState(t, r, "stdin", StateExited)
	if st.ExitCode != 0 {
		t.Fatalf("exit %d", st.ExitCode)
	}
	data, _ := os.ReadFile(s.LogPath)
	if !regexp.MustCompile(`Z stdout F typed line\n$`).Match(data) {
		t.Fatalf("log %q", data)
	}
}
