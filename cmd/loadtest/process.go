package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/storagescopes/app/internal/proctest"
	"github.com/storagescopes/app/store/redistest"
)

// process is a server under test: the app or the baseline, as a child
// process, or only a URL (-url).
type process struct {
	url   string
	pprof string            // the server's profiler, for its memory statistics
	proc  *proctest.Process // nil for a server the tool did not start
	prog  proctest.Program
	args  []string
	dir   string // its database's folder, removed by stop
	// redisPids are the redis-servers it uses (a cluster's six), whose CPU
	// time is counted beside its own; none for SQLite.
	redisPids []int
}

// buildApp builds the app once, into dir.
func buildApp(ctx context.Context, dir string) (proctest.Program, error) {
	return proctest.Build(ctx, "./cmd/web", dir)
}

// startServer starts the app on a temp database, or on Redis if redisURL
// is set.
func startServer(ctx context.Context, app proctest.Program, redisURL string, o options) (*process, error) {
	dir, err := os.MkdirTemp("", "loadtest-")
	if err != nil {
		return nil, err
	}
	args := []string{"-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "storage.db"),
		"-secret", "loadtest-secret-loadtest-secret-0123456789", "-write-rate", "0", "-pprof", "127.0.0.1:0", "-sync", o.sync}
	if o.liveDeflate {
		args = append(args, "-live-deflate", "on")
	}
	if redisURL != "" {
		args = append(args, "-redis", redisURL, "-redis-wait", strconv.Itoa(o.redisWait))
	}
	p, err := startProcess(ctx, app, args...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.dir = dir
	return p, nil
}

// another starts a second instance of the same server (same flags, a
// port of its own).
func (p *process) another(ctx context.Context) (*process, error) {
	return startProcess(ctx, p.prog, p.args...)
}

// target is one backend under test: the app on SQLite, on a redis-server
// of the tool's own, or on a six-node Redis Cluster of its own (with, for
// the fan-out across instances, a second instance on it).
type target struct {
	*process
	name    string
	redis   *redistest.Server
	cluster *redistest.Cluster
	writeTo *process
	dir     string // the redis-server's (or cluster's) folder
}

// startTarget starts the app on backend.
func startTarget(ctx context.Context, app proctest.Program, backend string, o options) (*target, error) {
	t := &target{name: backend}
	redisURL := ""
	if backend != "sqlite" {
		dir, err := os.MkdirTemp("", "loadtest-"+backend+"-")
		if err != nil {
			return nil, err
		}
		t.dir = dir
		if backend == "cluster" {
			t.cluster, err = redistest.NewCluster(dir)
		} else {
			t.redis, err = redistest.NewServer(dir)
		}
		if err != nil {
			t.stop()
			return nil, fmt.Errorf("-backend %s: %w", backend, err)
		}
		if t.cluster != nil {
			redisURL = t.cluster.URL
		} else {
			redisURL = t.redis.URL
		}
	}
	var err error
	if t.process, err = startServer(ctx, app, redisURL, o); err != nil {
		t.stop()
		return nil, err
	}
	t.process.redisPids = t.redisPids()
	if redisURL != "" && slices.Contains(o.scenarios, "fanout") {
		if t.writeTo, err = t.another(ctx); err != nil {
			t.stop()
			return nil, err
		}
	}
	return t, nil
}

func (t *target) redisPids() []int {
	if t.cluster != nil {
		var pids []int
		for _, n := range t.cluster.Nodes {
			pids = append(pids, n.Pid())
		}
		return pids
	}
	if t.redis == nil {
		return nil
	}
	return []int{t.redis.Pid()}
}

func (t *target) stop() {
	if t.writeTo != nil {
		t.writeTo.stop()
	}
	if t.process != nil {
		t.process.stop()
	}
	if t.redis != nil {
		t.redis.Kill()
	}
	if t.cluster != nil {
		t.cluster.Kill()
	}
	if t.dir != "" {
		os.RemoveAll(t.dir)
	}
}

// startBaseline starts this binary as the bare net/http baseline.
func startBaseline(ctx context.Context) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProcess(ctx, proctest.Program{Path: self}, "-baseline", "127.0.0.1:0")
}

var pprofRE = regexp.MustCompile(`pprof at=(http://\S+)/debug/pprof/`)

// startProcess runs prog until it serves, and finds its profiler.
func startProcess(ctx context.Context, prog proctest.Program, args ...string) (*process, error) {
	proc, err := proctest.Start(ctx, prog, args...)
	if err != nil {
		return nil, err
	}
	p := &process{url: proc.URL, proc: proc, prog: prog, args: args}
	if m := pprofRE.FindStringSubmatch(proc.Log()); m != nil {
		p.pprof = m[1]
	}
	return p, nil
}

// stop ends the process (SIGTERM, then SIGKILL) and removes its folder.
func (p *process) stop() {
	if p.proc != nil {
		p.proc.Stop()
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// restart stops the server and starts it again on the same database and
// port, and returns how long /healthz took to answer 200 from the start.
func (p *process) restart(ctx context.Context) (time.Duration, error) {
	p.proc.Stop()
	start := time.Now()
	if err := p.proc.Restart(ctx); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// usage is the process's CPU time so far and its peak resident memory.
func (p *process) usage() (cpu time.Duration, peakRSS int64) {
	return p.cpu(), statusKiB(p.proc.Pid(), "VmHWM") << 10
}

// cpu is the process's CPU time so far (user and system), or zero for a
// server the tool did not start.
func (p *process) cpu() time.Duration {
	if p.proc == nil {
		return 0
	}
	return pidCPU(p.proc.Pid())
}

// redisCPU is the CPU time of the redis-servers it uses so far, or zero.
func (p *process) redisCPU() time.Duration {
	var cpu time.Duration
	for _, pid := range p.redisPids {
		cpu += pidCPU(pid)
	}
	return cpu
}

// pidCPU is a process's CPU time so far (user and system).
func pidCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
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
func (p *process) rss() int64 { return statusKiB(p.proc.Pid(), "VmRSS") << 10 }

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
