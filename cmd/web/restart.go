package main

import (
	"fmt"
	"net"
	"strings"
)

// The demo buttons start the program again in place: the same binary
// (os.Executable, so `go run` works too), arguments, environment and
// address, by exec, so the process keeps its id and its terminal.

// restartError is what run returns when it stopped to start again.
type restartError struct{ addr string }

func (e *restartError) Error() string { return "restart on " + e.addr }

// demoOn says whether the restart and crash buttons are on: mode is on,
// off, or auto (on when the app listens on loopback only).
func demoOn(mode, addr string) (bool, error) {
	switch mode {
	case "on":
		return true, nil
	case "off":
		return false, nil
	case "auto":
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return false, nil
		}
		if host == "localhost" {
			return true, nil
		}
		ip := net.ParseIP(host)
		return ip != nil && ip.IsLoopback(), nil
	}
	return false, fmt.Errorf("-demo-controls: %q is not auto, on or off", mode)
}

// restartArgs are args with the address the program listens on now, so
// that a free port chosen at start (:0) is kept.
func restartArgs(args []string, addr string) []string {
	out := make([]string, 0, len(args)+2)
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "addr" {
			if !hasValue {
				i++ // its value follows
			}
			continue
		}
		out = append(out, a)
	}
	return append(out, "-addr", addr)
}
