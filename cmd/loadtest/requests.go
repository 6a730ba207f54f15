package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"time"
)

// The request scenarios: each measured against the baseline, on every
// server, as many runs as asked, and summed up.

// requests measures each request scenario on every target, o.runs times,
// the targets taking turns on each scenario; over several runs it then
// prints each one's median and range: its ratio to the baseline, and the
// server's CPU per request over the baseline's (steadier than the ratio on
// a machine whose speed drifts); and for each target after the first, the
// same of its pairs: each run's figures over the first target's in that
// run, which the drift between runs does not blur.
func requests(ctx context.Context, o options, targets []*target, base *process, out io.Writer) error {
	type key struct{ scenario, target string }
	var order []key
	ratios, cpus := map[key][]float64{}, map[key][]float64{}
	pairedRatios, pairedCPUs := map[key][]float64{}, map[key][]float64{}
	fmt.Fprintf(out, "%-14s %-7s %8s %8s %8s %8s %6s %9s %8s %6s   %s\n", "scenario", "backend", "req/s", "p50", "p99", "max", "errors", "baseline", "base p99", "ratio", "CPU µs/req: server client (baseline's) [redis-server]")
	for run := range o.runs {
		if o.runs > 1 {
			fmt.Fprintf(out, "run %d of %d\n", run+1, o.runs)
		}
		for _, name := range o.scenarios {
			if name == "fanout" || name == "full-scope" {
				continue
			}
			var first result
			var firstRatio float64
			for i, t := range targets {
				r, b, err := measure(ctx, name, o.conns, o, t.process, base)
				if err != nil {
					return fmt.Errorf("%s on %s: %w", name, t.name, err)
				}
				rs, rc := r.cpuPerRequest()
				bs, bc := b.cpuPerRequest()
				redis := ""
				if len(t.process.redisPids) > 0 {
					redis = " [" + us(r.perRequest(r.redisCPU)) + "]"
				}
				ratio := r.rps() / b.rps()
				fmt.Fprintf(out, "%-14s %-7s %8.0f %8s %8s %8s %6d %9.0f %8s %6.2f   %s %s (%s %s)%s\n", name, t.name, r.rps(), ms(r.p(50)), ms(r.p(99)), ms(r.max()), r.errors, b.rps(), ms(b.p(99)), ratio,
					us(rs), us(rc), us(bs), us(bc), redis)
				k := key{name, t.name}
				if _, seen := ratios[k]; !seen {
					order = append(order, k)
				}
				ratios[k] = append(ratios[k], ratio)
				if rs > 0 && bs > 0 {
					cpus[k] = append(cpus[k], float64(rs)/float64(bs))
				}
				if i == 0 {
					first, firstRatio = r, ratio
					continue
				}
				fs, _ := first.cpuPerRequest()
				pairedRatio, pairedCPU := ratio/firstRatio, float64(rs)/float64(fs)
				pairedRatios[k] = append(pairedRatios[k], pairedRatio)
				if fs > 0 {
					pairedCPUs[k] = append(pairedCPUs[k], pairedCPU)
				}
				fmt.Fprintf(out, "%-14s %s/%s: ratio %.2f×, server CPU %.2f× (with redis-server's %.2f×)\n", "", t.name, targets[0].name,
					pairedRatio, pairedCPU, float64(rs+r.perRequest(r.redisCPU))/float64(fs))
			}
		}
	}
	if o.runs > 1 {
		fmt.Fprintf(out, "\nover %d runs, median (range): the ratio to the baseline; the server's CPU per request over the baseline's\n", o.runs)
		for _, k := range order {
			fmt.Fprintf(out, "%-14s %-12s %s   %s\n", k.scenario, k.target, spread(ratios[k], ""), spread(cpus[k], "×"))
		}
		if len(targets) > 1 {
			fmt.Fprintf(out, "\npaired, each run's over %s's in the same run, median (range): the ratio; the server's CPU per request\n", targets[0].name)
			for _, k := range order {
				if k.target != targets[0].name {
					fmt.Fprintf(out, "%-14s %-12s %s   %s\n", k.scenario, k.target+"/"+targets[0].name, spread(pairedRatios[k], "×"), spread(pairedCPUs[k], "×"))
				}
			}
		}
	}
	return nil
}

// measure runs one scenario on target and on the baseline, taking turns.
func measure(ctx context.Context, name string, conns int, o options, target, base *process) (result, result, error) {
	sc, err := newScenario(ctx, name, target.url, conns)
	if err != nil {
		return result{}, result{}, err
	}
	// The bare handler reads the very requests the app does and sends the
	// app's own answer: what it costs more is the app's work, not HTTP's.
	a, err := sc.probe(ctx)
	if err != nil {
		return result{}, result{}, err
	}
	if err := put(ctx, http.DefaultClient, base.url+"/answer", a.json()); err != nil {
		return result{}, result{}, fmt.Errorf("baseline: %w", err)
	}
	bs := sc.against(base.url)
	// The machine is shared and its speed drifts: the app and the baseline
	// take turns in three slices each, so that both see the same drift.
	// Throughput is the median slice; latencies are pooled.
	const slices = 3
	var rs, bss []result
	for range slices {
		rs = append(rs, drive(ctx, sc, target, o.warmup/slices, o.duration/slices))
		bss = append(bss, drive(ctx, bs, base, o.warmup/slices, o.duration/slices))
	}
	return pool(rs), pool(bss), nil
}

// spread is the median of xs and their range, the median with unit.
func spread(xs []float64, unit string) string {
	if len(xs) == 0 {
		return "-"
	}
	s := slices.Sorted(slices.Values(xs))
	median := (s[(len(s)-1)/2] + s[len(s)/2]) / 2
	return fmt.Sprintf("%.2f%s (%.2f–%.2f)", median, unit, s[0], s[len(s)-1])
}

// profileServer starts the CPU profile of p (the first of the servers
// measured), long enough for the request scenarios on every server (each:
// the app's three slices and the baseline's, and a second or so to set
// up), and returns a function that waits for it and writes it to
// -cpuprofile.
func profileServer(ctx context.Context, o options, p *process, servers int) (wait func() error, err error) {
	if o.cpuProfile == "" {
		return func() error { return nil }, nil
	}
	if p.pprof == "" {
		return nil, fmt.Errorf("-cpuprofile: the server has no profiler (-url targets one the tool did not start)")
	}
	var n int
	for _, s := range o.scenarios {
		if s != "fanout" && s != "full-scope" {
			n++
		}
	}
	seconds := int(math.Ceil((time.Duration(n*servers) * (2*(o.warmup+o.duration) + time.Second)).Seconds()))
	done := make(chan error, 1)
	go func() {
		b, err := get(ctx, http.DefaultClient, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.pprof, seconds))
		if err == nil {
			err = os.WriteFile(o.cpuProfile, b, 0o644)
		}
		done <- err
	}()
	return func() error {
		if err := <-done; err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		return nil
	}, nil
}
