package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// fanout opens o.subscribers live connections (tabs of 50 browsers), then
// makes general writes one at a time and measures how long each takes to
// reach every tab. It also reports the server's memory per idle connection.
// With writeTo set (a second instance on the same Redis) the writes go
// there, so every delivery crosses instances.
func fanout(ctx context.Context, o options, target, writeTo *process, out io.Writer) error {
	writeURL, across := target.url, ""
	if writeTo != nil {
		writeURL, across = writeTo.url, ", written on a second instance"
	}
	const browsers, rounds = 50, 5
	n := o.subscribers
	wsURL := strings.Replace(target.url, "http", "ws", 1) + "/live"

	var jars []http.CookieJar
	for range browsers {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		if _, err := get(ctx, c, target.url+"/"); err != nil {
			return err
		}
		jars = append(jars, jar)
	}

	var rssBefore, inUseBefore int64
	if target.proc != nil {
		inUseBefore, _ = target.inUse(ctx)
		rssBefore = target.rss()
	}
	type sub struct {
		conn *websocket.Conn
		got  chan time.Time // when the current round's marker arrived
	}
	var lastMessage atomic.Int64 // unix nanoseconds
	subs := make([]*sub, n)
	dialStart := time.Now()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	ready := make(chan struct{}, n)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c := &http.Client{Jar: jars[i%browsers]}
			conn, _, err := websocket.Dial(ctx, fmt.Sprintf("%s?tab=%s&client=%s", wsURL, uuid(), uuid()), &websocket.DialOptions{HTTPClient: c})
			if err != nil {
				errs <- err
				return
			}
			conn.SetReadLimit(-1)
			s := &sub{conn: conn, got: make(chan time.Time, rounds+1)}
			subs[i] = s
			// The first message is the page's state; then come presence
			// lines and the rounds' pushes. Nothing else writes while the
			// rounds run, so a push of the general scope (it starts with
			// its control) is the round's: note its arrival and discard it,
			// keeping the client's share of the CPU small.
			go func() {
				first := true
				head := make([]byte, len(generalPush))
				for {
					_, r, err := conn.Reader(ctx)
					if err != nil {
						return
					}
					n, _ := io.ReadFull(r, head)
					if _, err := io.Copy(io.Discard, r); err != nil {
						return
					}
					lastMessage.Store(time.Now().UnixNano())
					if first {
						first = false
						ready <- struct{}{}
						continue
					}
					if string(head[:n]) == generalPush {
						s.got <- time.Now()
					}
				}
			}()
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	for range n {
		select {
		case <-ready:
		case <-time.After(60 * time.Second):
			return fmt.Errorf("not every subscriber got its snapshot")
		}
	}
	dialTime := time.Since(dialStart)
	defer func() {
		for _, s := range subs {
			s.conn.CloseNow()
		}
	}()

	// Idle memory: what the runtime has in use after a collection, and the
	// growth of the resident set (which still holds some of the garbage of
	// opening them all at once), once the pages' presence lines have
	// settled: nothing arrived for a while.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) &&
		time.Since(time.Unix(0, lastMessage.Load())) < time.Second; {
		time.Sleep(50 * time.Millisecond)
	}
	var rssPer, inUsePer float64
	if target.proc != nil {
		inUse, err := target.inUse(ctx)
		if err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
		inUsePer = float64(inUse-inUseBefore) / float64(n)
		rssPer = float64(target.rss()-rssBefore) / float64(n)
	}

	writer := &http.Client{}
	var deliveries []time.Duration
	var roundMax []time.Duration
	for round := range rounds {
		m := fmt.Sprintf("fanout-marker-%d-%s", round, uuid())
		req, _ := http.NewRequestWithContext(ctx, "PUT", writeURL+"/api/storage/general/fanout", strings.NewReader(`"`+m+`"`))
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		res, err := writer.Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("write: status %d", res.StatusCode)
		}
		var worst time.Duration
		for _, s := range subs {
			select {
			case t := <-s.got:
				d := t.Sub(t0)
				deliveries = append(deliveries, d)
				worst = max(worst, d)
			case <-time.After(30 * time.Second):
				return fmt.Errorf("round %d: a subscriber never got the write", round)
			}
		}
		roundMax = append(roundMax, worst)
	}
	slices.Sort(deliveries)
	r := result{latencies: deliveries}
	fmt.Fprintf(out, "fanout: %d live connections (%d browsers), opened in %s; %d general writes%s, each to every connection\n",
		n, browsers, dialTime.Round(time.Millisecond), rounds, across)
	fmt.Fprintf(out, "  delivery p50 %s  p99 %s  max %s  (per-write max: %v)\n", ms(r.p(50)), ms(r.p(99)), ms(r.max()), roundMax)
	if target.proc != nil {
		fmt.Fprintf(out, "  server memory per idle connection: %.1f KiB in use (Go heap + stacks, after a GC); %.1f KiB of RSS growth\n", inUsePer/1024, rssPer/1024)
	}
	return nil
}

// generalPush is how a push of the general scope begins: with its bound
// control.
const generalPush = `<hx-partial hx-target="#field-general-global_text"`
