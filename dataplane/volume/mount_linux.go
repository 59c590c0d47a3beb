package volume

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// mountTmpfs mounts a tmpfs at dir with the given options (mode=, size=).
func mountTmpfs(dir, opts string) error {
	if err := syscall.Mount("shoal", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs at %s: %w", dir, err)
	}
	return nil
}

// isMountPoint says whether something is mounted exactly at dir.
func isMountPoint(dir string) (bool, error) {
	mps, err := mountPoints()
	if err != nil {
		return false, err
	}
	for _, mp := range mps {
		if mp == dir {
			return true, nil
		}
	}
	return false, nil
}

// unmountUnder unmounts everything mounted at dir or below it, deepest
// first (and each mount point as often as it is stacked), then checks that
// nothing is left.
func unmountUnder(dir string) error {
	mps, err := mountPoints()
	if err != nil {
		return err
	}
	var under []string
	for _, mp := range mps {
		if within(dir, mp) {
			under = append(under, mp)
		}
	}
	sort.SliceStable(under, func(i, j int) bool { return len(under[i]) > len(under[j]) })
	for _, mp := range under {
		err := syscall.Unmount(mp, 0)
		if errors.Is(err, syscall.EBUSY) {
			// Still in use (a container not yet gone): detach it, the
			// kernel frees it with its last user.
			err = syscall.Unmount(mp, syscall.MNT_DETACH)
		}
		if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("unmount %s: %w", mp, err)
		}
	}
	if mps, err = mountPoints(); err != nil {
		return err
	}
	for _, mp := range mps {
		if within(dir, mp) {
			return fmt.Errorf("%s is still mounted", mp)
		}
	}
	return nil
}

// mountPoints lists the mount points of this process's mount namespace.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mps = append(mps, unescapeOctal(fields[4]))
	}
	return mps, sc.Err()
}

// unescapeOctal undoes mountinfo's \NNN escapes (space, tab, newline, \).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
