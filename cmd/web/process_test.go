package main

import (
	"os"
	"testing"

	"github.com/storagescopes/app/internal/proctest"
)

// The tests here run the real program as a child process, so that it can
// be killed with SIGKILL: this test binary, run again as main.
func TestMain(m *testing.M) {
	if path := os.Getenv(holdLockEnv); path != "" {
		holdLock(path)
	}
	proctest.RunMain(main)
	os.Exit(m.Run())
}

// startChild runs the program with args until the test ends.
func startChild(tb testing.TB, args ...string) *proctest.Process {
	tb.Helper()
	return proctest.MustStart(tb, proctest.Self(), args...)
}

// exitCode runs the program to its end (it must fail at start) and
// returns its exit code and output.
func exitCode(args ...string) (int, string) { return proctest.Exit(proctest.Self(), args...) }
