package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests here run the real program as a child process (this test
// binary, re-run as main), so that it can be killed with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("STORAGE_SCOPES_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is the program running as a child process.
type child struct {
	t    testing.TB
	cmd  *exec.Cmd
	URL  string
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

var childURL = regexp.MustCompile(`url=(http://\S+)`)

// startChild runs the program with args and waits for /healthz.
func startChild(t testing.TB, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...) // TestMain runs main with these
	cmd.Env = append(os.Environ(), "STORAGE_SCOPES_RUN_MAIN=1")
	c := &child{t: t, cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = c.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.out.Write([]byte(sc.Text() + "\n"))
			if m := childURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(c.kill)
	select {
	case c.URL = <-urls:
	case <-c.done:
		t.Fatalf("the program exited at start:\n%s", c.out)
	case <-time.After(20 * time.Second):
		t.Fatalf("the program did not start:\n%s", c.out)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		res, err := http.Get(c.URL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz not ready: %v", err)
		}
	}
}

// kill sends SIGKILL and waits for the process to go.
func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// terminate sends SIGTERM and returns how long the process took to exit.
func (c *child) terminate(limit time.Duration) (time.Duration, error) {
	start := time.Now()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return time.Since(start), nil
	case <-time.After(limit):
		return time.Since(start), fmt.Errorf("still running %s after SIGTERM", limit)
	}
}

// exitCode runs the program to its end (it must fail at start) and
// returns its exit code and output.
func exitCode(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "STORAGE_SCOPES_RUN_MAIN=1")
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode(), string(out)
}
