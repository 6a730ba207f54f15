// Package redistest starts a real redis-server for tests, the way
// net/http/httptest starts a real HTTP server.
package redistest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Start starts a redis-server of its own, with AOF on, on a free loopback
// port and a temp folder, stops it when the test ends and returns its URL.
// Without the binary the test skips, unless REDIS_REQUIRED=1 (CI).
func Start(tb testing.TB) string {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "redis-server not found: install it with `apt-get install -y redis-server` to run the Redis tests"
		if os.Getenv("REDIS_REQUIRED") == "1" {
			tb.Fatal(msg + " (REDIS_REQUIRED=1)")
		}
		tb.Skip(msg)
	}
	url, stop, err := Run(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	return url
}

// Run is Start outside a test: a redis-server with AOF on (fsync every
// second), its files in dir, on a free loopback port. stop kills it.
func Run(dir string) (url string, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("redis-server not found (apt-get install -y redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "redis://" + addr + "/0", stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server did not start on %s", addr)
		}
	}
}
