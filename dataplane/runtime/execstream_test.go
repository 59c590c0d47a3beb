package runtime

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a bytes.Buffer safe for the copy goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestExecStream: stdin reaches the command and its end closes the
// command's stdin (cat of /dev/stdin returns); on a terminal the input is
// echoed by the terminal, ^D ends it, resizes are accepted, and output
// comes on stdout.
func TestExecStream(t *testing.T) {
	r := newRuntime(t)
	c := ctx(t)
	if err := r.Create(c, spec(t, r, "streamd", "sleep")); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(c, "streamd"); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	code, err := r.ExecStream(c, "streamd", ExecIO{
		Cmd:   []string{"/app", "cat", "/dev/stdin"},
		Stdin: strings.NewReader("line one\nline two\n"), Stdout: &out,
	})
	if err != nil || code != 0 || out.String() != "line one\nline two\n" {
		t.Fatalf("stdin: code %d err %v out %q", code, err, out.String())
	}

	pr, pw := io.Pipe()
	resize := make(chan TermSize, 1)
	resize <- TermSize{Width: 101, Height: 33}
	var tty lockedBuffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, err = r.ExecStream(c, "streamd", ExecIO{
			Cmd: []string{"/app", "cat", "/dev/stdin"}, Stdin: pr, Stdout: &tty, TTY: true, Resize: resize,
		})
	}()
	io.WriteString(pw, "typed\n\x04")
	<-done
	pw.Close()
	if err != nil || code != 0 || strings.Count(tty.String(), "typed") != 2 {
		t.Fatalf("tty: code %d err %v out %q (want the echo and cat's copy)", code, err, tty.String())
	}
}
