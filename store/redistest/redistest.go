// Package redistest starts a real redis-server for tests, the way
// net/http/httptest starts a real HTTP server.
package redistest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Start starts a redis-server of its own, with AOF on, on a free loopback
// port and a temp folder, stops it when the test ends and returns its URL.
// Without the binary the test skips, unless REDIS_REQUIRED=1 (CI).
func Start(tb testing.TB) string { return StartServer(tb).URL }

// StartServer is Start for a test that stops the server and starts it
// again.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "redis-server not found: install it with `apt-get install -y redis-server` to run the Redis tests"
		if os.Getenv("REDIS_REQUIRED") == "1" {
			tb.Fatal(msg + " (REDIS_REQUIRED=1)")
		}
		tb.Skip(msg)
	}
	s, err := NewServer(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Kill)
	return s
}

// Run is Start outside a test: a redis-server with AOF on (fsync every
// second), its files in dir, on a free loopback port. stop kills it.
func Run(dir string) (url string, stop func(), err error) {
	s, err := NewServer(dir)
	if err != nil {
		return "", nil, err
	}
	return s.URL, s.Kill, nil
}

// Server is one redis-server, which can be stopped and started again on
// the same port and files.
type Server struct {
	URL  string
	addr string
	dir  string
	args []string // more of redis-server's options (a cluster node's)
	cmd  *exec.Cmd
}

// NewServer starts a redis-server with AOF on (fsync every second), its
// files in dir, on a free loopback port.
func NewServer(dir string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{URL: "redis://" + addr + "/0", addr: addr, dir: dir}
	return s, s.Restart()
}

// Restart starts the server again after Stop, with the same data.
func (s *Server) Restart() error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("redis-server not found (apt-get install -y redis-server)")
	}
	_, port, _ := net.SplitHostPort(s.addr)
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--dir", s.dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "no"}, s.args...)
	s.cmd = exec.Command(bin, args...)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", s.addr); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server did not start on %s", s.addr)
		}
	}
}

// Stop shuts the server down as an operator would (SIGTERM: it writes
// what it holds to its files and exits).
func (s *Server) Stop() {
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Pid is the running server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Kill ends the server at once.
func (s *Server) Kill() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// StartReplica starts a redis-server of its own that replicates s, stops
// it when the test ends, and returns it once it has caught up with s.
func (s *Server) StartReplica(tb testing.TB) *Server {
	tb.Helper()
	host, port, _ := net.SplitHostPort(s.addr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &Server{URL: "redis://" + addr + "/0", addr: addr, dir: tb.TempDir(), args: []string{"--replicaof", host, port}}
	if err := r.Restart(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Kill)
	if err := r.WaitInSync(10 * time.Second); err != nil {
		tb.Fatal(err)
	}
	return r
}

// WaitInSync waits until a replica's link to its primary is up and its
// first copy is loaded.
func (s *Server) WaitInSync(wait time.Duration) error {
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		if s.cmd == nil {
			return fmt.Errorf("the replica on %s is not running", s.addr)
		}
		out, err := s.cli("info", "replication")
		if err == nil && strings.Contains(out, "master_link_status:up") && strings.Contains(out, "master_sync_in_progress:0") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the replica on %s did not catch up within %s", s.addr, wait)
		}
	}
}

// Promote makes a replica a primary of its own (REPLICAOF NO ONE), as a
// failover does, keeping what it has.
func (s *Server) Promote() error {
	s.args = nil // a restart keeps it a primary
	out, err := s.cli("replicaof", "no", "one")
	if err != nil || out != "OK" {
		return fmt.Errorf("promote %s: %q, %v", s.addr, out, err)
	}
	return nil
}

// Pause freezes the server (SIGSTOP), as a machine that stops answering
// does; Resume lets it go on.
func (s *Server) Pause() { s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume is Pause's end (SIGCONT).
func (s *Server) Resume() {
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGCONT)
	}
}
