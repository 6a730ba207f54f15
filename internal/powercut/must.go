//go:build linux

package powercut

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// MustMount mounts backing on mountpoint for a test and closes it when the
// test ends. Where FUSE is missing (no /dev/fuse, or mounting is not
// permitted) the test skips, unless FUSE_REQUIRED=1 (CI): then it fails.
func MustMount(tb testing.TB, backing, mountpoint string) *FS {
	tb.Helper()
	missing := func(why string) {
		tb.Helper()
		msg := "FUSE is not available here (" + why + "): the power-cut tests need /dev/fuse and the right to mount (root, or fuse3's fusermount3)"
		if os.Getenv("FUSE_REQUIRED") == "1" {
			tb.Fatal(msg + " (FUSE_REQUIRED=1)")
		}
		tb.Skip(msg)
	}
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		missing(err.Error())
	}
	dev.Close()
	fsys, err := Mount(backing, mountpoint)
	if err != nil {
		if notPermitted(err) {
			missing(err.Error())
		}
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := fsys.Close(); err != nil {
			tb.Error(err)
		}
	})
	return fsys
}

// notPermitted reports whether a mount failed for want of the right to
// mount. Without root, go-fuse runs fusermount, which only says that it
// failed (its reason is on stderr), or is not installed at all.
func notPermitted(err error) bool {
	return errors.Is(err, os.ErrPermission) || errors.Is(err, exec.ErrNotFound) ||
		strings.Contains(err.Error(), "fusermount")
}
