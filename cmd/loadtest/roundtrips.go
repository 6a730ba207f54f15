package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// roundTrips counts, from Redis itself (MONITOR), the commands the app
// sends per request of each scenario: one client, one request at a time.
// Commands a script runs inside Redis are not round trips and are left
// out, as are the health checks (PING) the app sends once a second.
func roundTrips(ctx context.Context, o options, t *target, out io.Writer) error {
	const requests = 100
	fmt.Fprintf(out, "\nRedis commands per request (%s, MONITOR, %d requests one at a time):", t.name, requests)
	for _, name := range o.scenarios {
		if name == "fanout" || name == "full-scope" {
			continue
		}
		sc, err := newScenario(ctx, name, t.url, 1)
		if err != nil {
			return err
		}
		for range 5 { // the first requests fill the caches
			if _, err := sc.probe(ctx); err != nil {
				return err
			}
		}
		n, names, err := countCommands(strings.TrimPrefix(t.redis.URL[:strings.LastIndexByte(t.redis.URL, '/')], "redis://"), func() error {
			for range requests {
				if _, err := sc.probe(ctx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(out, "\n  %-14s %.2f  %s", name, float64(n)/requests, names)
	}
	fmt.Fprintln(out)
	return nil
}

// countCommands counts the commands clients send to the Redis at addr
// while fn runs, and names them with their counts.
func countCommands(addr string, fn func() error) (int, string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	if _, err := io.WriteString(c, "MONITOR\r\n"); err != nil {
		return 0, "", err
	}
	r := bufio.NewReader(c)
	if ok, err := r.ReadString('\n'); err != nil || ok != "+OK\r\n" {
		return 0, "", fmt.Errorf("MONITOR: %q %v", ok, err)
	}
	var mu sync.Mutex
	byName := map[string]int{}
	counting := true
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			// +1701234567.123456 [0 127.0.0.1:54321] "evalsha" …; a script's own: [0 lua]
			_, rest, _ := strings.Cut(line, "] ")
			name, _, _ := strings.Cut(strings.Trim(rest, "\r\n"), " ")
			name = strings.ToLower(strings.Trim(name, `"`))
			mu.Lock()
			if counting && !strings.Contains(line, " lua] ") && name != "ping" {
				byName[name]++
			}
			mu.Unlock()
		}
	}()
	err = fn()
	time.Sleep(100 * time.Millisecond) // the last lines
	mu.Lock()
	counting = false
	mu.Unlock()
	c.Close()
	<-done
	n, names := 0, []string{}
	for name, k := range byName {
		n += k
		names = append(names, fmt.Sprintf("%s %d", name, k))
	}
	slices.Sort(names)
	return n, strings.Join(names, ", "), err
}
