// Package proctest runs the app as a child process, the way store/redistest
// runs redis-server: build it once, start it on a free port, wait until it
// answers /healthz, stop it by signal, start it again on the same address,
// and keep what it printed for when something fails. The cmd/web tests, the
// browser suite and the load tool all start the app through it.
//
// A program it runs prints url=http://host:port once it listens, as
// cmd/web does, and answers GET /healthz with 200 once it is ready.
package proctest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Program is how to run the app: a binary, and what it adds to the
// environment.
type Program struct {
	Path string
	Env  []string
	Echo io.Writer // if set, also gets everything the program prints
}

// Build compiles the package pkg (e.g. "./cmd/web") of the module around
// the current folder into dir.
func Build(ctx context.Context, pkg, dir string) (Program, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return Program{}, fmt.Errorf("find the module: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return Program{}, errors.New("not inside the module: run from its folder")
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	build.Dir = filepath.Dir(mod)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return Program{}, fmt.Errorf("build %s: %w", pkg, err)
	}
	return Program{Path: bin}, nil
}

// selfEnv tells a test binary started by Self to be the program.
const selfEnv = "PROCTEST_RUN_MAIN=1"

// Self is this test binary run again as the program: its TestMain calls
// RunMain first. No build: the test binary is the program.
func Self() Program { return Program{Path: os.Args[0], Env: []string{selfEnv}} }

// RunMain runs main and exits, in a test binary started by Self; anywhere
// else it returns at once.
func RunMain(main func()) {
	if slices.Contains(os.Environ(), selfEnv) {
		main()
		os.Exit(0)
	}
}

// Process is one run of a Program.
type Process struct {
	URL  string // http://host:port it serves
	Addr string // host:port; Restart keeps it

	prog Program
	args []string
	cmd  *exec.Cmd
	log  *Log
	done chan struct{}
}

// How long a start may take.
const startWait = 30 * time.Second

// Start runs prog with args and waits until it serves: it printed its URL
// and /healthz answers 200. Its address is the value of its -addr flag
// ("127.0.0.1:0" picks a free port).
func Start(ctx context.Context, prog Program, args ...string) (*Process, error) {
	p := &Process{prog: prog, args: args, log: &Log{}}
	return p, p.start(ctx)
}

func (p *Process) start(ctx context.Context) error {
	p.cmd = exec.Command(p.prog.Path, p.args...)
	p.cmd.Env = append(os.Environ(), p.prog.Env...)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var keep io.Writer = p.log
	if p.prog.Echo != nil {
		keep = io.MultiWriter(p.log, p.prog.Echo)
	}
	p.cmd.Stderr = keep
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", filepath.Base(p.prog.Path), err)
	}
	p.done = make(chan struct{})
	exited := p.done
	go func() {
		p.cmd.Wait()
		close(exited)
	}()
	ctx, cancel := context.WithTimeout(ctx, startWait)
	defer cancel()
	go func() { // an exit ends the wait at once
		select {
		case <-exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	url, err := Serving(ctx, out, keep)
	if err != nil {
		p.Kill()
		return fmt.Errorf("%s did not start (%w); it printed:\n%s", filepath.Base(p.prog.Path), err, p.log)
	}
	p.URL, p.Addr = url, url[strings.Index(url, "://")+3:]
	return nil
}

var urlLine = regexp.MustCompile(`url=(https?://\S+)`)

// Serving reads a program's output, copying every line to keep, until the
// program prints url=…, then waits until that URL answers /healthz with
// 200, and returns it. The copying goes on until output ends.
func Serving(ctx context.Context, output io.Reader, keep io.Writer) (string, error) {
	urls := make(chan string, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(output)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			fmt.Fprintln(keep, sc.Text())
			if m := urlLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, output)
	}()
	var url string
	select {
	case url = <-urls:
	case <-ended:
		select {
		case url = <-urls: // its last words
		default:
			return "", errors.New("its output ended without a url= line")
		}
	case <-ctx.Done():
		return "", errors.New("it printed no url= line")
	}
	return url, WaitReady(ctx, url)
}

// WaitReady asks url's /healthz until it answers 200, or ctx ends.
func WaitReady(ctx context.Context, url string) error {
	for {
		err := Ready(ctx, url)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s/healthz: %w", url, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readyClient asks a program whether it is up: over HTTPS it takes the
// test's own certificates on trust (what they prove is for the tests).
var readyClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	DialContext: DialLocalhost}}

// DialLocalhost dials a name under .localhost (which names this machine,
// RFC 6761) at 127.0.0.1, and anything else as it is: a test serves
// app.localhost without a resolver that knows it.
func DialLocalhost(ctx context.Context, network, addr string) (net.Conn, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(host, ".localhost") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Ready asks url's /healthz once and reports whether it answered 200.
func Ready(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/healthz", nil)
	if err != nil {
		return err
	}
	res, err := readyClient.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}

// Restart starts the program again with the same arguments, on the same
// address. The process must have ended (Kill, Terminate or Stop it first).
func (p *Process) Restart(ctx context.Context) error {
	if !p.Exited() {
		return errors.New("restart: the process is still running")
	}
	for i := range p.args {
		if p.args[i] == "-addr" && i+1 < len(p.args) {
			p.args[i+1] = p.Addr
		}
	}
	return p.start(ctx)
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill ends the process with SIGKILL, no graceful anything, and waits.
func (p *Process) Kill() {
	if !p.Exited() {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// Terminate sends SIGTERM and returns how long the process took to end, or
// an error if it did not within limit.
func (p *Process) Terminate(limit time.Duration) (time.Duration, error) {
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return time.Since(start), nil
	case <-time.After(limit):
		return time.Since(start), fmt.Errorf("still running %s after SIGTERM", limit)
	}
}

// Stop ends the process gracefully if it can (SIGTERM), by SIGKILL after
// ten seconds if not.
func (p *Process) Stop() {
	if _, err := p.Terminate(10 * time.Second); err != nil {
		p.Kill()
	}
}

// Log is everything the process printed so far, both streams, across
// restarts.
func (p *Process) Log() string { return p.log.String() }

// Log is a buffer that one goroutine writes while others read.
type Log struct {
	mu sync.Mutex
	sb strings.Builder
}

func (l *Log) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.Write(b)
}

func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.String()
}

// Exit runs prog with args to its end (it is meant to fail at start) and
// returns its exit code and everything it printed.
func Exit(prog Program, args ...string) (int, string) {
	cmd := exec.Command(prog.Path, args...)
	cmd.Env = append(os.Environ(), prog.Env...)
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode(), string(out)
}

// MustStart is Start for a test: it fails the test if the program does not
// start, kills it when the test ends, and shows what it printed if the test
// failed.
func MustStart(tb testing.TB, prog Program, args ...string) *Process {
	tb.Helper()
	p, err := Start(context.Background(), prog, args...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			tb.Logf("%s printed:\n%s", filepath.Base(prog.Path), p.Log())
		}
	})
	return p
}

// MustRestart is Restart for a test.
func (p *Process) MustRestart(tb testing.TB) {
	tb.Helper()
	if err := p.Restart(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

// FreePort is a port that was free on 127.0.0.1 a moment ago, for a
// program that takes no :0.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
