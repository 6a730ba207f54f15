package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// chartRun measures the first scenario and the baseline at each
// concurrency level and writes an SVG with throughput and p99.
func chartRun(ctx context.Context, o options, target, base *process, out io.Writer) error {
	name := o.scenarios[0]
	if name == "fanout" || name == "full-scope" {
		return fmt.Errorf("-chart needs a request scenario first in -scenarios")
	}
	type point struct {
		c          int
		rps, brps  float64
		p99, bp99  float64 // ms
		errorCount int
	}
	var pts []point
	fmt.Fprintf(out, "%-6s %10s %9s %10s %9s %7s\n", "conns", name, "p99", "baseline", "p99", "ratio")
	for _, c := range o.levels {
		r, b, err := measure(ctx, name, c, o, target, base)
		if err != nil {
			return err
		}
		p := point{c: c, rps: r.rps(), brps: b.rps(), p99: float64(r.p(99).Microseconds()) / 1000, bp99: float64(b.p(99).Microseconds()) / 1000, errorCount: r.errors}
		pts = append(pts, p)
		fmt.Fprintf(out, "%-6d %10.0f %9s %10.0f %9s %7.2f\n", c, p.rps, ms(r.p(99)), p.brps, ms(b.p(99)), p.rps/p.brps)
	}

	const w, h, pad = 720, 300, 50
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`, w, h*2+20)
	sb.WriteString(`<rect width="100%" height="100%" fill="white"/>`)
	panel := func(y0 int, title, unit string, a, b func(point) float64) {
		maxV := 0.0
		for _, p := range pts {
			maxV = math.Max(maxV, math.Max(a(p), b(p)))
		}
		maxV *= 1.1
		x := func(i int) float64 { return pad + float64(i)*float64(w-2*pad)/float64(max(1, len(pts)-1)) }
		y := func(v float64) float64 { return float64(y0+h-pad) - v/maxV*float64(h-2*pad) }
		fmt.Fprintf(&sb, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`, pad, y0+20, title)
		fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>`, pad, y0+h-pad, w-pad, y0+h-pad)
		fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>`, pad, y0+pad, pad, y0+h-pad)
		for i, p := range pts {
			fmt.Fprintf(&sb, `<text x="%.0f" y="%d" text-anchor="middle">%d</text>`, x(i), y0+h-pad+16, p.c)
		}
		fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="middle">connections</text>`, w/2, y0+h-8)
		for _, frac := range []float64{0, 0.5, 1} {
			v := maxV / 1.1 * frac
			fmt.Fprintf(&sb, `<text x="%d" y="%.0f" text-anchor="end">%.0f</text>`, pad-4, y(v)+4, v)
		}
		fmt.Fprintf(&sb, `<text x="%d" y="%d">%s</text>`, pad+4, y0+pad-6, unit)
		line := func(f func(point) float64, color, label string, ly int) {
			var d strings.Builder
			for i, p := range pts {
				fmt.Fprintf(&d, "%s%.1f,%.1f ", map[bool]string{true: "M", false: "L"}[i == 0], x(i), y(f(p)))
			}
			fmt.Fprintf(&sb, `<path d="%s" fill="none" stroke="%s" stroke-width="2"/>`, d.String(), color)
			for i, p := range pts {
				fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, x(i), y(f(p)), color)
			}
			fmt.Fprintf(&sb, `<text x="%d" y="%d" fill="%s">%s</text>`, w-pad-170, y0+ly, color, label)
		}
		line(a, "#3f5bd8", name, 20)
		line(b, "#999999", "bare net/http baseline", 36)
	}
	panel(0, "Throughput", "requests/s", func(p point) float64 { return p.rps }, func(p point) float64 { return p.brps })
	panel(h+20, "p99 latency", "ms", func(p point) float64 { return p.p99 }, func(p point) float64 { return p.bp99 })
	sb.WriteString(`</svg>`)
	if err := os.WriteFile(o.chart, []byte(sb.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "chart written to %s\n", o.chart)
	return nil
}
