// Command loadtest measures the app against a bare net/http baseline in
// the same run, on the same machine, with the same client.
//
//	go run ./cmd/loadtest [-c 64] [-d 5s] [-scenarios write-htmx,write-api,...] [-subscribers 5000] [-runs 5] [-app A,B]
//
// It builds the server and starts it as a separate process on a temp
// database (or targets -url, or starts the built -app servers, which take
// turns), starts the baseline as another process (this same binary with
// -baseline), drives each scenario for -d after a warm-up, and prints
// requests/s, p50/p99/max latency, errors and the ratio to the baseline,
// plus the server's CPU time and peak RSS; -runs repeats the request
// scenarios and sums them up as medians and ranges. -chart writes an SVG of
// throughput and p99 against concurrency; -cpuprofile the server's CPU
// profile. Loopback only.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/storagescopes/app/internal/proctest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// options are the flags.
type options struct {
	url         string
	apps        []string // built servers to measure instead of building ./cmd/web
	runs        int      // times to run the request scenarios
	cpuProfile  string   // write the server's CPU profile over the request scenarios here
	conns       int
	duration    time.Duration
	warmup      time.Duration
	scenarios   []string
	subscribers []int // live connections, one fanout run each
	chart       string
	levels      []int
	rows        int
	backends    []string // sqlite, redis, or both, measured side by side
	sync        string
	fillKeys    int // full-scope: keys, and bytes of each
	fillBytes   int
	fullTabs    int    // full-scope: live tabs for the fan-out
	liveDeflate bool   // the fan-out's clients offer permessage-deflate, and the app is started with -live-deflate on
	redisWait   int    // the app's -redis-wait on Redis or a cluster
	baseline    string // internal: serve the baseline on this address
}

func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	var o options
	var scenarios, levels, backends string
	fs.StringVar(&o.url, "url", "", "target a running server (loopback only) instead of starting one")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the (first) server's CPU profile over the request scenarios to this file (go tool pprof FILE)")
	apps := fs.String("app", "", "start this built server instead of building ./cmd/web; several, comma-separated (e.g. two commits' builds), take turns on each scenario")
	fs.IntVar(&o.runs, "runs", 1, "run the request scenarios this many times and print each one's median and range")
	fs.IntVar(&o.conns, "c", 64, "concurrent connections (virtual clients)")
	fs.DurationVar(&o.duration, "d", 5*time.Second, "measured duration of each scenario")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each measurement")
	fs.StringVar(&scenarios, "scenarios", strings.Join(allScenarios, ","), "scenarios to run: "+strings.Join(allScenarios, ", "))
	subscribers := fs.String("subscribers", "5000,10000", "live connections for the fanout scenario, one run per number (comma-separated)")
	fs.StringVar(&o.chart, "chart", "", "write an SVG chart of throughput and p99 against concurrency to this file")
	fs.StringVar(&levels, "levels", "1,4,16,64,256", "concurrency levels for -chart")
	fs.StringVar(&backends, "backend", "sqlite", "the server's store: sqlite, redis (the tool starts a redis-server of its own; the fan-out then writes on a second instance), cluster (a six-node Redis Cluster of its own), or several, e.g. sqlite,redis,cluster: side by side, each scenario on one then the others")
	fs.StringVar(&o.sync, "sync", "full", "the SQLite server's -sync: full or normal")
	fs.IntVar(&o.rows, "rows", 0, "fill the database with this many rows before measuring (e.g. 1000000)")
	fs.IntVar(&o.fillKeys, "fill-keys", 1000, "full-scope: keys to fill the general scope with (it refuses beyond -max-keys)")
	fs.IntVar(&o.fillBytes, "fill-bytes", 16384, "full-scope: bytes of each value's JSON")
	fs.IntVar(&o.fullTabs, "full-tabs", 100, "full-scope: live tabs that the change fans out to")
	fs.IntVar(&o.redisWait, "redis-wait", 0, "the app's -redis-wait on -backend redis or cluster: replicas a write waits for (a cluster has one per primary; one Redis has none, so 0)")
	fs.BoolVar(&o.liveDeflate, "live-deflate", false, "fanout: offer WebSocket permessage-deflate (and start the app with -live-deflate on)")
	fs.StringVar(&o.baseline, "baseline", "", "internal: serve the baseline on this address")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, f := range strings.Split(*subscribers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-subscribers: %q is not a positive number", f)
		}
		o.subscribers = append(o.subscribers, n)
	}
	if *apps != "" {
		o.apps = strings.Split(*apps, ",")
		names := map[string]bool{}
		for _, path := range o.apps {
			if names[appName(path)] {
				return o, fmt.Errorf("-app %s: two builds named %s; the figures are told apart by name, so give each file its own", *apps, appName(path))
			}
			names[appName(path)] = true
		}
	}
	if o.runs < 1 {
		return o, fmt.Errorf("-runs %d: at least 1", o.runs)
	}
	o.backends = strings.Split(backends, ",")
	for _, b := range o.backends {
		if b != "sqlite" && b != "redis" && b != "cluster" {
			return o, fmt.Errorf("-backend %q: use sqlite, redis, cluster, or several of them", backends)
		}
	}
	if len(o.backends) > 1 && (o.chart != "" || o.rows > 0 || o.url != "") {
		return o, fmt.Errorf("-backend %s: -chart, -rows and -url measure one backend", backends)
	}
	if len(o.apps) > 1 && (o.chart != "" || o.rows > 0) {
		return o, fmt.Errorf("-app %s: -chart and -rows measure one server", *apps)
	}
	o.scenarios = strings.Split(scenarios, ",")
	for _, s := range o.scenarios {
		if !isScenario(s) {
			return o, fmt.Errorf("unknown scenario %q (have %s)", s, strings.Join(allScenarios, ", "))
		}
	}
	for _, l := range strings.Split(levels, ",") {
		var n int
		if _, err := fmt.Sscan(l, &n); err != nil || n < 1 {
			return o, fmt.Errorf("-levels: %q is not a positive number", l)
		}
		o.levels = append(o.levels, n)
	}
	if o.rows > 0 && o.backends[0] != "sqlite" {
		return o, fmt.Errorf("-rows measures the SQLite store (a second, empty one runs beside it)")
	}
	if o.url != "" && len(o.apps) > 0 {
		return o, fmt.Errorf("-url and -app: one measures a running server, the other starts one")
	}
	if o.url != "" {
		if err := checkLoopback(o.url); err != nil {
			return o, err
		}
	}
	return o, nil
}

// checkLoopback refuses any target that is not this machine.
func checkLoopback(raw string) error {
	host := strings.TrimPrefix(strings.TrimPrefix(raw, "http://"), "https://")
	host, _, _ = strings.Cut(host, "/")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-url %s: only loopback targets are allowed", raw)
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	if o.baseline != "" {
		return serveBaseline(ctx, o.baseline)
	}
	if slices.Contains(o.scenarios, "fanout") {
		if err := raiseOpenFiles(uint64(2*slices.Max(o.subscribers) + 4096)); err != nil {
			fmt.Fprintf(out, "note: the open files limit stays as it is (%v)\n", err)
		}
	}

	var app proctest.Program // the first, for -rows
	var targets []*target
	if o.url != "" {
		targets = []*target{{name: "url", process: &process{url: o.url}}}
	} else {
		dir, err := os.MkdirTemp("", "loadtest-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		var apps []proctest.Program
		for _, path := range o.apps {
			apps = append(apps, proctest.Program{Path: path})
		}
		if len(apps) == 0 {
			built, err := buildApp(ctx, dir)
			if err != nil {
				return err
			}
			apps = append(apps, built)
		}
		app = apps[0]
		for _, a := range apps {
			for _, backend := range o.backends {
				t, err := startTarget(ctx, a, backend, o)
				if err != nil {
					return err
				}
				defer t.stop()
				if len(apps) > 1 { // named by their builds
					t.name = appName(a.Path)
					if len(o.backends) > 1 {
						t.name += "/" + backend
					}
				}
				targets = append(targets, t)
			}
		}
	}
	base, err := startBaseline(ctx)
	if err != nil {
		return err
	}
	defer base.stop()

	fmt.Fprintf(out, "machine: %s\n", machine())
	for _, t := range targets {
		fmt.Fprintf(out, "server: %s (%s)   ", t.url, t.name)
	}
	fmt.Fprintf(out, "baseline: %s   connections: %d   duration: %s (+%s warm-up)\n\n", base.url, o.conns, o.duration, o.warmup)

	if o.chart != "" {
		return chartRun(ctx, o, targets[0].process, base, out)
	}

	profiled, err := profileServer(ctx, o, targets[0].process, len(targets)*o.runs)
	if err != nil {
		return err
	}
	if err := requests(ctx, o, targets, base, out); err != nil {
		return err
	}
	if err := profiled(); err != nil {
		return err
	}
	for _, t := range targets {
		if t.redis == nil {
			continue
		}
		if err := roundTrips(ctx, o, t, out); err != nil {
			return err
		}
	}
	target := targets[0].process
	if slices.Contains(o.scenarios, "fanout") {
		for _, n := range o.subscribers {
			for _, t := range targets {
				fmt.Fprintf(out, "\n[%s] ", t.name)
				if err := fanout(ctx, o, n, t.process, t.writeTo, base, out); err != nil {
					return fmt.Errorf("fanout of %d on %s: %w", n, t.name, err)
				}
			}
		}
	}
	if slices.Contains(o.scenarios, "full-scope") {
		for _, t := range targets {
			fmt.Fprintf(out, "\n[%s] ", t.name)
			if err := fullScope(ctx, o, t.process, out); err != nil {
				return fmt.Errorf("full-scope on %s: %w", t.name, err)
			}
		}
	}
	if o.rows > 0 {
		if target.proc == nil {
			return fmt.Errorf("-rows needs the tool to start the server (no -url)")
		}
		if err := bigDatabase(ctx, o, app, target, base, out); err != nil {
			return err
		}
	}
	for _, t := range targets {
		if t.proc != nil {
			cpu, rss := t.usage()
			fmt.Fprintf(out, "\nserver process (%s): CPU time %s, peak RSS %.1f MiB\n", t.name, cpu.Round(time.Millisecond), float64(rss)/(1<<20))
		}
	}
	return nil
}

// bigDatabase fills the database with o.rows rows, times a restart until
// /healthz answers, and compares the write and page scenarios with an empty
// database. One measured ratio to the baseline moves from one measurement to
// the next about as much as the effect looked for, so a second server on an
// empty database runs beside the full one, the two take turns bigRounds
// times (each measured against the baseline alongside it), and their
// medians are compared.
func bigDatabase(ctx context.Context, o options, app proctest.Program, target, base *process, out io.Writer) error {
	start := time.Now()
	if err := fill(ctx, target.url, o.rows); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nfilled %d rows through the API in %s\n", o.rows, time.Since(start).Round(time.Second))
	ready, err := target.restart(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "restart on %d rows: /healthz answered %s after the process started\n", o.rows, ready.Round(time.Millisecond))
	empty, err := startServer(ctx, app, "", o)
	if err != nil {
		return err
	}
	defer empty.stop()
	fmt.Fprintf(out, "%-14s %-22s %-22s %s\n", "scenario", "ratio, full database", "ratio, empty database", "full vs empty (medians)")
	for _, name := range []string{"write-htmx", "page"} {
		var full, none []float64
		for i := range bigRounds {
			// Alternate which goes first.
			order := []*process{target, empty}
			if i%2 == 1 {
				order = []*process{empty, target}
			}
			for _, p := range order {
				r, b, err := measure(ctx, name, o.conns, o, p, base)
				if err != nil {
					return err
				}
				if p == target {
					full = append(full, r.rps()/b.rps())
				} else {
					none = append(none, r.rps()/b.rps())
				}
			}
		}
		fmt.Fprintf(out, "%-14s %-22s %-22s %.0f%%\n", name, ratios(full), ratios(none), 100*median(full)/median(none))
	}
	return nil
}

// bigRounds is how many times the full and the empty database take turns.
const bigRounds = 3

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func ratios(xs []float64) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%.2f", x)
	}
	return b.String()
}

func us(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%d", d.Microseconds())
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
}

// appName is what the figures call a build given to -app: its file's name.
func appName(path string) string { return strings.TrimSuffix(filepath.Base(path), ".exe") }
