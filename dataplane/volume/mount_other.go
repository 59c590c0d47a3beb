//go:build !linux

package volume

import "errors"

var errNoTmpfs = errors.New("tmpfs volumes need Linux")

func mountTmpfs(dir, opts string) error     { return errNoTmpfs }
func isMountPoint(dir string) (bool, error) { return false, nil }
func unmountUnder(dir string) error         { return nil }
