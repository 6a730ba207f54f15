package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// fanout opens o.subscribers live connections on the app (tabs of 50
// browsers) and as many on the baseline's bare WebSocket server, with the
// same client. Then the two take turns: one general write on the app, then
// one broadcast on the bare server of a message as large as the app's push;
// each time it measures how long the message takes to reach every
// connection. It also reports each server's memory per idle connection.
// With writeTo set (a second instance on the same Redis) the writes go
// there, so every delivery crosses instances.
func fanout(ctx context.Context, o options, n int, target, writeTo, base *process, out io.Writer) error {
	writeURL, across := target.url, ""
	if writeTo != nil {
		writeURL, across = writeTo.url, ", written on a second instance"
	}
	const browsers, rounds = 50, 5

	var jars []http.CookieJar
	for range browsers {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		if _, err := get(ctx, c, target.url+"/"); err != nil {
			return err
		}
		jars = append(jars, jar)
	}
	openApp := func() (*subscribers, error) {
		return openSubscribers(ctx, target, n, o.liveDeflate, true, func(i int) string {
			return fmt.Sprintf("%s/live?tab=%s&client=%s", target.url, uuid(), uuid())
		}, func(i int) *http.Client { return &http.Client{Jar: jars[i%browsers]} })
	}
	openBare := func() (*subscribers, error) {
		return openSubscribers(ctx, base, n, o.liveDeflate, false, func(int) string { return base.url + "/ws" },
			func(int) *http.Client { return http.DefaultClient })
	}
	writer := &http.Client{}
	var appD, bareD []time.Duration
	var appMax, bareMax []time.Duration
	var size int64
	var appCPU, bareCPU time.Duration
	appRound := func(app *subscribers, round int) error {
		marker := fmt.Sprintf("fanout-marker-%d-%s", round, uuid())
		c0 := target.cpu()
		d, err := app.round(ctx, marker, func() error {
			return put(ctx, writer, writeURL+"/api/storage/general/fanout", `"`+marker+`"`)
		})
		if err != nil {
			return fmt.Errorf("round %d on the app: %w", round, err)
		}
		if round > 0 {
			appCPU += target.cpu() - c0
			appD, appMax = append(appD, d...), append(appMax, slices.Max(d))
		}
		size = app.size.Load()
		return nil
	}
	bareRound := func(bare *subscribers, round int) error {
		marker := fmt.Sprintf("fanout-marker-%d-%s", round, uuid())
		msg := marker + strings.Repeat(" ", max(0, int(size)-len(marker)))
		c0 := base.cpu()
		d, err := bare.round(ctx, marker, func() error {
			req, _ := http.NewRequestWithContext(ctx, "POST", base.url+"/broadcast", strings.NewReader(msg))
			res, err := writer.Do(req)
			if err != nil {
				return err
			}
			res.Body.Close()
			return nil
		})
		if err != nil {
			return fmt.Errorf("round %d on the bare server: %w", round, err)
		}
		if round > 0 {
			bareCPU += base.cpu() - c0
			bareD, bareMax = append(bareD, d...), append(bareMax, slices.Max(d))
		}
		return nil
	}
	// Round 0 warms both up (the first write on a connection, a goroutine's
	// stack growing) and is not counted. The two take turns round by round
	// when this process may hold both sets of sockets; else the app's rounds
	// come first, its sockets are closed, then the bare server's.
	turns := "taking turns"
	app, err := openApp()
	if err != nil {
		return fmt.Errorf("the app: %w", err)
	}
	defer app.close()
	if openFilesFor(2 * n) {
		bare, err := openBare()
		if err != nil {
			return fmt.Errorf("the bare server: %w", err)
		}
		defer bare.close()
		for round := range rounds + 1 {
			if err := appRound(app, round); err != nil {
				return err
			}
			if err := bareRound(bare, round); err != nil {
				return err
			}
		}
		return report(out, o, n, browsers, rounds, across, turns, app, bare, target, base, appD, bareD, appMax, bareMax, appCPU, bareCPU)
	}
	turns = "the app's, then the bare server's (this process may not hold both sets of sockets at once)"
	for round := range rounds + 1 {
		if err := appRound(app, round); err != nil {
			return err
		}
	}
	app.afterRounds(target, n)
	app.close()
	bare, err := openBare()
	if err != nil {
		return fmt.Errorf("the bare server: %w", err)
	}
	defer bare.close()
	for round := range rounds + 1 {
		if err := bareRound(bare, round); err != nil {
			return err
		}
	}
	return report(out, o, n, browsers, rounds, across, turns, app, bare, target, base, appD, bareD, appMax, bareMax, appCPU, bareCPU)
}

// report prints a fan-out's figures, the app's against the bare server's.
func report(out io.Writer, o options, n, browsers, rounds int, across, turns string, app, bare *subscribers, target, base *process,
	appD, bareD, appMax, bareMax []time.Duration, appCPU, bareCPU time.Duration) error {
	if app.rssAfter == 0 {
		app.afterRounds(target, n)
	}
	bare.afterRounds(base, n)
	slices.Sort(appD)
	slices.Sort(bareD)
	a, b := result{latencies: appD}, result{latencies: bareD}
	deflate := ""
	if o.liveDeflate {
		deflate = ", permessage-deflate offered"
	}
	fmt.Fprintf(out, "fanout: %d live connections on the app (%d browsers) and %d on a bare coder/websocket server, same client%s; %d rounds, %s (after one to warm up): a general write%s, then a broadcast of as many bytes\n",
		n, browsers, n, deflate, rounds, turns, across)
	fmt.Fprintf(out, "  %-5s %7s %10s %10s %10s %12s %12s %12s %14s %14s %10s %s\n", "", "message", "p50", "p99", "max", "server CPU", "in use/conn", "RSS/conn", "after rounds", "wire bytes/conn", "join CPU", "opened in")
	line := func(name string, r result, s *subscribers, cpu time.Duration) {
		fmt.Fprintf(out, "  %-5s %6dB %10s %10s %10s %10s/r %9.1f KiB %9.1f KiB %11.1f KiB %13.0fB %7.0f µs %s\n", name, s.size.Load(), ms(r.p(50)), ms(r.p(99)), ms(r.max()),
			(cpu / time.Duration(rounds)).Round(time.Millisecond), s.inUsePer/1024, s.rssPer/1024, s.rssAfter/1024, float64(s.roundBytes.Load())/float64(n*(rounds+1)), s.joinCPU, s.opened.Round(time.Millisecond))
	}
	line("app", a, app, appCPU)
	line("bare", b, bare, bareCPU)
	ratio := func(x, y float64) string {
		if y == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f×", x/y)
	}
	fmt.Fprintf(out, "  app/bare: p99 %s, max %s, RSS per idle connection %s (after the rounds %s), in use %s, server CPU per round %s  (per-round max, app %v, bare %v)\n",
		ratio(float64(a.p(99)), float64(b.p(99))), ratio(float64(a.max()), float64(b.max())),
		ratio(app.rssPer, bare.rssPer), ratio(app.rssAfter, bare.rssAfter), ratio(app.inUsePer, bare.inUsePer), ratio(float64(appCPU), float64(bareCPU)),
		roundMs(appMax), roundMs(bareMax))
	return nil
}

func roundMs(ds []time.Duration) []string {
	var s []string
	for _, d := range ds {
		s = append(s, ms(d))
	}
	return s
}

// put writes one JSON value through the API.
func put(ctx context.Context, c *http.Client, url, value string) error {
	status, err := putStatus(ctx, c, url, value)
	if err == nil && status >= 300 {
		err = fmt.Errorf("PUT %s: status %d", url, status)
	}
	return err
}

// putStatus writes one JSON value through the API and returns the status.
func putStatus(ctx context.Context, c *http.Client, url, value string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, "PUT", url, strings.NewReader(value))
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// subscribers are n WebSocket connections to one server, each read in the
// background, and what one costs the server while idle.
type subscribers struct {
	conns  []*websocket.Conn
	marker atomic.Pointer[string] // the current round's
	got    chan time.Time         // when a connection got the round's message
	// size is the size of the last message that carried the marker;
	// roundBytes counts every byte read off the sockets while rounds run
	// (after permessage-deflate, if it was taken), wire every byte.
	size, roundBytes, wire atomic.Int64
	last                   atomic.Int64 // unix nanoseconds of the last message
	opened                 time.Duration
	inUsePer, rssPer       float64 // server memory per idle connection, bytes, after the joins
	rssAfter               float64 // the same after the rounds
	rssBefore              int64   // the server's RSS before the connections
	joinCPU                float64 // server CPU per connection while they opened and settled, µs
}

var readBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// openSubscribers dials n connections to p, 64 at a time, and waits until
// each has its first message (when first is set: the app's join) and
// until nothing has arrived for a second; then it measures p's memory.
func openSubscribers(ctx context.Context, p *process, n int, deflate, first bool, url func(i int) string, client func(i int) *http.Client) (*subscribers, error) {
	var rssBefore, inUseBefore int64
	cpuBefore := p.cpu()
	if p.proc != nil {
		inUseBefore, _ = p.inUse(ctx)
		rssBefore = p.rss()
	}
	s := &subscribers{conns: make([]*websocket.Conn, n), got: make(chan time.Time, n), rssBefore: rssBefore}
	mode := websocket.CompressionDisabled
	if deflate {
		mode = websocket.CompressionNoContextTakeover
	}
	// Every byte read off the sockets is counted, as it came (compressed,
	// if permessage-deflate was taken).
	dialer := &net.Dialer{}
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{conn, &s.wire}, nil
	}}
	start := time.Now()
	sem := make(chan struct{}, 64)
	ready := make(chan struct{}, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			u := strings.Replace(url(i), "http", "ws", 1)
			c := *client(i)
			c.Transport = transport
			conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: &c, CompressionMode: mode})
			if err != nil {
				errs <- err
				return
			}
			conn.SetReadLimit(-1)
			s.conns[i] = conn
			if !first {
				ready <- struct{}{}
			}
			go s.read(ctx, conn, first, ready)
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		s.close()
		return nil, fmt.Errorf("dial: %w", err)
	}
	for range n {
		select {
		case <-ready:
		case <-time.After(60 * time.Second):
			s.close()
			return nil, fmt.Errorf("not every connection got its first message")
		}
	}
	s.opened = time.Since(start)
	// Idle: nothing arrived for a second (the app's presence lines have
	// settled).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) &&
		time.Since(time.Unix(0, s.last.Load())) < time.Second; {
		time.Sleep(50 * time.Millisecond)
	}
	s.joinCPU = float64((p.cpu() - cpuBefore).Microseconds()) / float64(n)
	if p.proc != nil {
		inUse, err := p.inUse(ctx)
		if err != nil {
			s.close()
			return nil, err
		}
		time.Sleep(2 * time.Second)
		s.inUsePer = float64(inUse-inUseBefore) / float64(n)
		s.rssPer = float64(p.rss()-rssBefore) / float64(n)
	}
	return s, nil
}

// afterRounds notes the server's RSS per connection once the rounds are
// done: the pushes' buffers and the heap they grew.
func (s *subscribers) afterRounds(p *process, n int) {
	if p.proc != nil {
		s.rssAfter = float64(p.rss()-s.rssBefore) / float64(n)
	}
}

// read reads conn until it closes: it notes when the round's message
// arrives and discards everything else.
func (s *subscribers) read(ctx context.Context, conn *websocket.Conn, first bool, ready chan<- struct{}) {
	buf := readBuffers.Get().(*bytes.Buffer)
	defer readBuffers.Put(buf)
	for {
		_, r, err := conn.Reader(ctx)
		if err != nil {
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return
		}
		now := time.Now()
		s.last.Store(now.UnixNano())
		if first {
			first = false
			ready <- struct{}{}
			continue
		}

		if m := s.marker.Load(); m != nil && bytes.Contains(buf.Bytes(), []byte(*m)) {
			s.size.Store(int64(buf.Len()))
			s.got <- now
		}
	}
}

// round sets the marker, calls send, and waits until every connection got
// a message with the marker; it returns each one's delay from the send.
func (s *subscribers) round(ctx context.Context, marker string, send func() error) ([]time.Duration, error) {
	s.marker.Store(&marker)
	wire0 := s.wire.Load()
	defer func() { s.roundBytes.Add(s.wire.Load() - wire0) }()
	t0 := time.Now()
	if err := send(); err != nil {
		return nil, err
	}
	d := make([]time.Duration, 0, len(s.conns))
	for range s.conns {
		select {
		case t := <-s.got:
			d = append(d, t.Sub(t0))
		case <-time.After(60 * time.Second):
			return nil, fmt.Errorf("%d of %d connections got the message within 60s", len(d), len(s.conns))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return d, nil
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (s *subscribers) close() {
	for _, c := range s.conns {
		if c != nil {
			c.CloseNow()
		}
	}
}
