package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a server under test: the app or the baseline, as a child
// process (or only a URL, with -url).
type process struct {
	url   string
	pprof string // the server's profiler, for its memory statistics
	cmd   *exec.Cmd
	dir   string
	done  chan struct{}
}

// startServer builds the app and starts it on a temp database, or on
// Redis if redisURL is set.
func startServer(ctx context.Context, redisURL string) (*process, error) {
	dir, err := os.MkdirTemp("", "loadtest-")
	if err != nil {
		return nil, err
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "web")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/web")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build server: %w", err)
	}
	args := []string{"-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "storage.db"),
		"-secret", "loadtest-secret-loadtest-secret-0123456789", "-write-rate", "0", "-pprof", "127.0.0.1:0"}
	if redisURL != "" {
		args = append(args, "-redis", redisURL)
	}
	p, err := startProcess(ctx, bin, args...)
	if err != nil {
		return nil, err
	}
	p.dir = dir
	return p, nil
}

// another starts a second instance of the same server (same flags).
func (p *process) another(ctx context.Context) (*process, error) {
	return startProcess(ctx, p.cmd.Path, p.cmd.Args[1:]...)
}

// startRedis runs a redis-server of its own (AOF on, fsync every second,
// as the tests run it) on a free loopback port.
func startRedis(ctx context.Context) (url string, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("-backend redis needs redis-server (apt-get install -y redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "loadtest-redis-")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "")
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "redis://" + addr + "/0", stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server did not start")
		}
	}
}

// startBaseline starts this binary as the bare net/http baseline.
func startBaseline(ctx context.Context) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProcess(ctx, self, "-baseline", "127.0.0.1:0")
}

var (
	urlRE   = regexp.MustCompile(`url=(http://\S+)`)
	pprofRE = regexp.MustCompile(`pprof at=(http://\S+)/debug/pprof/`)
)

// startProcess runs bin and waits until it prints the URL it serves and
// answers there.
func startProcess(ctx context.Context, bin string, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	urls := make(chan string, 1)
	pprofs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := pprofRE.FindStringSubmatch(sc.Text()); m != nil {
				pprofs <- m[1]
			}
			if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
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
		close(p.done)
	}()
	select {
	case p.url = <-urls:
		select {
		case p.pprof = <-pprofs:
		default:
		}
	case <-p.done:
		return nil, fmt.Errorf("%s exited at start", filepath.Base(bin))
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s did not start", filepath.Base(bin))
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	return p, nil
}

var sigterm = syscall.SIGTERM

// stop ends the process (SIGTERM, then SIGKILL) and removes its folder.
func (p *process) stop() {
	if p.cmd != nil && p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// usage is the process's CPU time so far and its peak resident memory.
func (p *process) usage() (cpu time.Duration, peakRSS int64) {
	return p.cpu(), statusKiB(p.cmd.Process.Pid, "VmHWM") << 10
}

// cpu is the process's CPU time so far (user and system), or zero for a
// server the tool did not start.
func (p *process) cpu() time.Duration {
	if p.cmd == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) <= 12 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// selfCPU is this process's CPU time so far: the client's.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss is the process's resident memory now.
func (p *process) rss() int64 { return statusKiB(p.cmd.Process.Pid, "VmRSS") << 10 }

// inUse forces a garbage collection in the server and returns the memory
// its Go runtime has in use: heap spans in use plus goroutine stacks.
func (p *process) inUse(ctx context.Context) (int64, error) {
	if p.pprof == "" {
		return 0, fmt.Errorf("no profiler")
	}
	body, err := get(ctx, http.DefaultClient, p.pprof+"/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	var heap, stack int64
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapInuse = "); ok {
			heap, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok {
			stack, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	return heap + stack, nil
}

func statusKiB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run loadtest inside the module (go run ./cmd/loadtest)")
	}
	return filepath.Dir(mod), nil
}

// machine describes where the numbers come from.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s, %s/%s", model, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// get fetches url and returns its body.
func get(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}
