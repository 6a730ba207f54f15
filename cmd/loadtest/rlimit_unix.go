//go:build unix

package main

import "syscall"

// raiseOpenFiles lets this process (and the servers it starts, which
// inherit it) hold n files open: the fan-out holds a socket per live
// connection to the app and as many to the bare server. Raising the hard
// limit needs root; without it the soft one goes as far as the hard one.
func raiseOpenFiles(n uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= n {
		return nil
	}
	want := l
	want.Cur = n
	if want.Max < n {
		want.Max = n
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		l.Cur = l.Max
		return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	return nil
}

// openFilesFor says this process may hold n more files open (beside a few
// hundred of its own).
func openFilesFor(n int) bool {
	var l syscall.Rlimit
	return syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur >= uint64(n)+512
}
