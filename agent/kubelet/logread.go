package kubelet

import (
	"bytes"
	"errors"
	"io"
	"os"
	"time"

	"github.com/shoal-dev/shoal/dataplane/runtime"
)

// logStart is where a read of a container's log begins: files[file] at
// offset.
type logStart struct {
	file   int
	offset int64
}

// sinceFiles leaves out the files last written before since (every line
// in them is older); it reports whether the files kept may still hold
// older lines (then recordWriter filters records by their time; lines of
// older agents' files, without one, are all kept). started is when the attempt started: if not before since,
// every line is recent enough.
func sinceFiles(files []string, since, started time.Time) (kept []string, approximate bool) {
	if since.IsZero() || (!started.IsZero() && !started.Before(since)) {
		return files, false
	}
	for i, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			continue
		}
		if fi.ModTime().Before(since) && i < len(files)-1 {
			continue // a rotated file, all older
		}
		if fi.ModTime().Before(since) {
			// The file in progress, all older: nothing yet, but kept for
			// follow; read from its end.
			kept = append(kept, f)
			continue
		}
		kept = append(kept, f)
		approximate = true
	}
	return kept, approximate
}

// tailStart finds where the last n lines of the concatenation of files
// begin (a last line without its newline counts as a line).
func tailStart(files []string, n int64) (logStart, error) {
	if len(files) == 0 {
		return logStart{}, nil
	}
	end := logStart{file: len(files) - 1}
	if fi, err := os.Stat(files[end.file]); err == nil {
		end.offset = fi.Size()
	}
	if n == 0 {
		return end, nil
	}
	buf := make([]byte, 32<<10)
	first := true // the very last byte of the log: a newline there ends the last line
	seen := int64(0)
	for i := len(files) - 1; i >= 0; i-- {
		f, err := os.Open(files[i])
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return logStart{}, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return logStart{}, err
		}
		pos := fi.Size()
		for pos > 0 {
			k := min(int64(len(buf)), pos)
			pos -= k
			if _, err := f.ReadAt(buf[:k], pos); err != nil && err != io.EOF {
				f.Close()
				return logStart{}, err
			}
			for j := k - 1; j >= 0; j-- {
				if buf[j] != '\n' {
					first = false
					continue
				}
				if first {
					first = false
					continue
				}
				seen++
				if seen == n {
					f.Close()
					return logStart{file: i, offset: pos + j + 1}, nil
				}
			}
		}
		f.Close()
	}
	return logStart{}, nil // fewer lines than n: everything
}

// copyLogs writes files from start to their current ends to out, and
// returns the file in progress (the last) opened, with the offset reached
// in it, for follow; nil if it does not exist.
func copyLogs(files []string, start logStart, out io.Writer) (*os.File, int64, error) {
	for i := start.file; i < len(files); i++ {
		f, err := os.Open(files[i])
		if errors.Is(err, os.ErrNotExist) && i < len(files)-1 {
			continue // rotated away meanwhile
		}
		if err != nil {
			return nil, 0, err
		}
		off := int64(0)
		if i == start.file {
			off = start.offset
		}
		n, err := io.Copy(out, io.NewSectionReader(f, off, 1<<62))
		off += n
		if i == len(files)-1 {
			return f, off, err
		}
		f.Close()
		if err != nil {
			return nil, 0, err
		}
	}
	return nil, 0, nil
}

// errLimit ends a read at limitBytes.
var errLimit = errors.New("limitBytes reached")

// limitWriter passes at most n bytes, then fails with errLimit.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errLimit
	}
	cut := false
	if int64(len(p)) > l.n {
		p, cut = p[:l.n], true
	}
	n, err := l.w.Write(p)
	l.n -= int64(n)
	if err == nil && cut {
		err = errLimit
	}
	return n, err
}

// recordWriter turns the bytes of a log file into what pods/log sends:
// each record's text (runtime.ParseLogRecord), its time first with
// timestamps, records older than since left out; lines that are not
// records (files of older agents) pass as they are. It holds an
// unfinished line until its end comes, or Flush.
type recordWriter struct {
	w          io.Writer
	timestamps bool
	since      time.Time
	pending    []byte
	out        []byte
}

func (r *recordWriter) Write(p []byte) (int, error) {
	r.pending = append(r.pending, p...)
	r.out = r.out[:0]
	rest := r.pending
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		r.line(rest[:i])
		rest = rest[i+1:]
	}
	r.pending = append(r.pending[:0], rest...)
	if len(r.out) == 0 {
		return len(p), nil
	}
	if _, err := r.w.Write(r.out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// line appends what one line of the file gives to r.out.
func (r *recordWriter) line(l []byte) {
	rec, ok := runtime.ParseLogRecord(l)
	if !ok {
		r.out = append(append(r.out, l...), '\n')
		return
	}
	if !r.since.IsZero() && rec.Time.Before(r.since) {
		return
	}
	if r.timestamps {
		r.out = rec.Time.UTC().AppendFormat(r.out, time.RFC3339Nano)
		r.out = append(r.out, ' ')
	}
	r.out = append(r.out, rec.Text...)
	if !rec.Partial {
		r.out = append(r.out, '\n')
	}
}

// Flush writes an unfinished last line as it is.
func (r *recordWriter) Flush() error {
	if len(r.pending) == 0 {
		return nil
	}
	_, err := r.w.Write(r.pending)
	r.pending = r.pending[:0]
	return err
}

// hasRecords reports whether the log in files is written as records: the
// first line of the first file that has one.
func hasRecords(files []string) bool {
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		buf := make([]byte, 128)
		n, _ := io.ReadFull(f, buf)
		f.Close()
		if n == 0 {
			continue
		}
		first, _, _ := bytes.Cut(buf[:n], []byte("\n"))
		_, ok := runtime.ParseLogRecord(first)
		return ok
	}
	return false
}
