package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RotateLog rotates the container log at path when it has reached maxBytes:
// path.(keep-1) → path.keep, …, path.1 → path.2, a copy of path → path.1,
// then path is truncated to zero. keep is how many rotated files to keep
// (0 = just truncate). The node loop calls it periodically.
//
// Copy-then-truncate, because the container's shim holds path open in
// append mode and nothing tells it to reopen: a rename would leave it writing
// to the rotated file forever. The price: what the container writes between
// the copy and the truncate (microseconds to a few ms for files of some MiB)
// is lost, and the copy costs I/O proportional to maxBytes. Since the shim
// appends (O_APPEND), writes after the truncate land at the new end of the
// file, not at the old offset, so no hole appears.
func RotateLog(path string, maxBytes int64, keep int) error {
	if maxBytes <= 0 {
		return errors.New("rotate log: maxBytes must be positive")
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Size() < maxBytes {
		return nil
	}
	if keep > 0 {
		_ = os.Remove(rotated(path, keep))
		for i := keep - 1; i >= 1; i-- {
			if err := os.Rename(rotated(path, i), rotated(path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if err := copyFile(path, rotated(path, 1)); err != nil {
			return fmt.Errorf("rotate log %s: %w", path, err)
		}
	}
	return os.Truncate(path, 0)
}

func rotated(path string, i int) string { return path + "." + strconv.Itoa(i) }

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// PreviousLogPath is the log of the attempt before the one logged at path,
// for paths laid out by ContainerLogPath (".../<attempt>.log").
func PreviousLogPath(path string) (string, error) {
	base := filepath.Base(path)
	n, err := strconv.Atoi(strings.TrimSuffix(base, ".log"))
	if err != nil || !strings.HasSuffix(base, ".log") {
		return "", fmt.Errorf("log path %q is not <attempt>.log", path)
	}
	if n == 0 {
		return "", fmt.Errorf("no previous container: %s is the first attempt", path)
	}
	return filepath.Join(filepath.Dir(path), strconv.Itoa(n-1)+".log"), nil
}

// LogFiles lists the files that hold the log at path, oldest first: the
// rotated files still kept (path.N … path.1), then path itself (listed
// even if it does not exist yet).
func LogFiles(path string) []string {
	var out []string
	for i := 100; i >= 1; i-- {
		if _, err := os.Stat(rotated(path, i)); err == nil {
			out = append(out, rotated(path, i))
		}
	}
	return append(out, path)
}

// FollowPoll is how often ReadLog checks a followed log for new output.
var FollowPoll = 100 * time.Millisecond

// ReadLog writes the log at path to w: the rotated files that are still
// kept, oldest first, then path itself. With previous, the log of the
// previous attempt (PreviousLogPath) instead. With follow, it then keeps
// copying what the container appends (starting over when the file is
// truncated by RotateLog) until ctx is done, and returns nil.
func ReadLog(ctx context.Context, path string, previous, follow bool, w io.Writer) error {
	if previous {
		p, err := PreviousLogPath(path)
		if err != nil {
			return err
		}
		path = p
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("log %s: %w", path, err)
	}
	for i := 100; i >= 1; i-- {
		f, err := os.Open(rotated(path, i))
		if err != nil {
			continue
		}
		_, err = io.Copy(w, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	off, err := io.Copy(w, f)
	if err != nil || !follow {
		return err
	}
	ticker := time.NewTicker(FollowPoll)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.Size() < off { // truncated by rotation
			off = 0
		}
		if fi.Size() == off {
			continue
		}
		n, err := io.Copy(w, io.NewSectionReader(f, off, fi.Size()-off))
		off += n
		if err != nil {
			return err
		}
	}
}
