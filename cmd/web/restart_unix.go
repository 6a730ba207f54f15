//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// canRestartInPlace says the demo buttons can start the program again in
// place.
const canRestartInPlace = true

// execSelf replaces the process with the program started again on args.
// Every file the process holds but stdin, stdout and stderr is closed on
// the way, as the kernel does for a process that dies: a crash leaves no
// lock behind. The open files are listed in /proc/self/fd (Linux) or
// /dev/fd (macOS, the BSDs).
func execSelf(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		if fds, err = os.ReadDir("/dev/fd"); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
	}
	for _, fd := range fds {
		if n, err := strconv.Atoi(fd.Name()); err == nil && n > 2 {
			syscall.CloseOnExec(n)
		}
	}
	err = syscall.Exec(exe, append([]string{exe}, args...), os.Environ())
	return errors.Join(errors.New("restart: exec failed"), err)
}
