package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// metricsURL is where a server started with -metrics serves them, as its
// log says.
func metricsURL(tb testing.TB, log string) string {
	tb.Helper()
	m := regexp.MustCompile(`metrics at=(http://\S+)`).FindStringSubmatch(log)
	if m == nil {
		tb.Fatalf("no metrics address in the log:\n%s", log)
	}
	return m[1]
}

// scrape reads the metrics and returns the value of each series, by its
// name and labels as the text format writes them.
func scrape(tb testing.TB, url string) map[string]float64 {
	tb.Helper()
	code, body := do(tb, http.DefaultClient, "GET", url, "", nil)
	if code != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", url, code, body)
	}
	series := map[string]float64{}
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(strings.TrimSpace(line[i+1:]), 64)
		if err != nil {
			tb.Fatalf("metrics line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series
}

// An operator scraping -metrics sees the requests by route and status,
// the writes' batches and commit times, the cache, the live pages and what
// was pushed to them, the boot number and the process's memory; the app's
// own address does not serve them.
func TestMetrics(t *testing.T) {
	s := MustRun(t, filepath.Join(t.TempDir(), "storage.db"), "-metrics", "127.0.0.1:0")
	url := metricsURL(t, s.log.String())
	c := newJarClient()
	for range 3 {
		do(t, c, "GET", s.URL+"/", "", nil)
	}
	conn := mustLive(t, c, s.URL, 1)
	mustJoin(t, conn)
	if code, _ := do(t, newJarClient(), "PUT", s.URL+"/api/storage/general/greeting", `"hi"`, map[string]string{"Content-Type": "application/json"}); code != http.StatusCreated {
		t.Fatalf("PUT: %d", code)
	}
	if _, _, err := conn.Read(context.Background()); err != nil { // the push
		t.Fatal(err)
	}
	do(t, c, "GET", s.URL+"/no/such/page", "", nil)
	do(t, c, "PUT", s.URL+"/api/storage/nowhere/k", `1`, map[string]string{"Content-Type": "application/json"})

	var m map[string]float64
	waitUntil(t, "the push is counted", func() bool { m = scrape(t, url); return m["scopes_pushes_total"] >= 1 })
	for _, want := range []struct {
		series string
		min    float64
	}{
		{`scopes_http_requests_total{code="200",method="GET",route="/"}`, 3},
		{`scopes_http_requests_total{code="201",method="PUT",route="/api/storage/{scope}/{key}"}`, 1},
		{`scopes_http_requests_total{code="404",method="PUT",route="/api/storage/{scope}/{key}"}`, 1},
		{`scopes_http_requests_total{code="404",method="GET",route="unmatched"}`, 1},
		{`scopes_http_requests_total{code="101",method="GET",route="/live"}`, 1},
		{`scopes_http_request_duration_seconds_count{route="/"}`, 3},
		{`scopes_write_batch_size_count`, 1},
		{`scopes_write_commit_seconds_count`, 1},
		{`scopes_live_connections`, 1},
		{`scopes_pushes_total`, 1},
		{`scopes_push_delay_seconds_count`, 1},
		{`scopes_live_bytes_total`, 1000}, // the join and the push, at least
		{`scopes_cache_hits_total`, 1},
		{`process_resident_memory_bytes`, 1 << 20},
		{`go_memstats_heap_alloc_bytes`, 1 << 20},
	} {
		if got, ok := m[want.series]; !ok || got < want.min {
			t.Errorf("%s = %v (present: %v), want at least %v", want.series, got, ok, want.min)
		}
	}
	if got, ok := m[`scopes_http_request_duration_seconds_count{route="/live"}`]; ok {
		t.Errorf("a live connection was timed (%v), want it counted only", got)
	}
	if got, want := fmt.Sprint(m["scopes_boot_number"]), bootNumber(t, c, s.URL); got != want {
		t.Errorf("scopes_boot_number = %s, want the footer's %s", got, want)
	}
	if code, _ := do(t, c, "GET", s.URL+"/metrics", "", nil); code != http.StatusNotFound {
		t.Errorf("the app's own address answers /metrics with %d, want 404", code)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	waitUntil(t, "the closed page is no longer counted", func() bool { return scrape(t, url)["scopes_live_connections"] == 0 })
}

// waitUntil polls cond for up to 10 seconds.
func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting until %s", what)
		}
	}
}
