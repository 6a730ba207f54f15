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

// fullScope measures what a page, a join and one key's change cost in
// bytes, first with the general scope nearly empty and then with it filled
// to its documented limits (o.fillKeys keys of o.fillBytes bytes): a page
// GET as sent (plain, and gzip when asked), a live page's join, the push
// another browser's page receives for one short change, and how long that
// change takes to reach o.fullTabs live tabs.
func fullScope(ctx context.Context, o options, target *process, out io.Writer) error {
	writer := newBrowserClient()
	if _, err := get(ctx, writer, target.url+"/"); err != nil {
		return err
	}
	fmt.Fprintf(out, "full-scope: the general scope empty, then filled with %d keys of %d bytes; %d live tabs for the fan-out\n", o.fillKeys, o.fillBytes, o.fullTabs)
	fmt.Fprintf(out, "  %-7s %12s %12s %12s %12s %10s %10s %10s\n", "scope", "page", "page gzip", "join", "push", "fan-out p50", "p99", "max")
	measure := func(label string) error {
		page, err := pageBytes(ctx, target.url, false)
		if err != nil {
			return err
		}
		zipped, err := pageBytes(ctx, target.url, true)
		if err != nil {
			return err
		}
		tabs, err := openTabs(ctx, target.url, o.fullTabs)
		if err != nil {
			return err
		}
		defer tabs.close()
		marker := "full-scope-" + uuid()
		d, err := tabs.round(ctx, marker, func() error {
			return put(ctx, writer, target.url+"/api/storage/general/global_text", `"`+marker+`"`)
		})
		if err != nil {
			return err
		}
		slices.Sort(d)
		r := result{latencies: d}
		fmt.Fprintf(out, "  %-7s %12s %12s %12s %12s %10s %10s %10s\n", label, kib(page), kib(zipped), kib(tabs.join.Load()), kib(tabs.size.Load()),
			ms(r.p(50)), ms(r.p(99)), ms(r.max()))
		return nil
	}
	if err := measure("empty"); err != nil {
		return err
	}
	start := time.Now()
	n, err := fillGeneral(ctx, target.url, o.fillKeys, o.fillBytes)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  (filled %d keys in %s)\n", n, time.Since(start).Round(time.Millisecond))
	return measure("full")
}

func kib(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/1024)
}

// newBrowserClient is an HTTP client with a cookie jar of its own: one
// browser.
func newBrowserClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: &http.Transport{DisableCompression: true}}
}

// pageBytes loads the page as a new browser and returns the bytes of its
// body as sent: plain, or gzip-compressed when it asks for gzip.
func pageBytes(ctx context.Context, base string, gzip bool) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/", nil)
	if gzip {
		req.Header.Set("Accept-Encoding", "gzip, br")
	}
	res, err := newBrowserClient().Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("GET /: status %d", res.StatusCode)
	}
	return io.Copy(io.Discard, res.Body)
}

// tabs are live pages of one browser, each with its join's size noted.
type tabs struct {
	*subscribers
	join atomic.Int64
}

// openTabs opens n live pages of one new browser (after its page load).
func openTabs(ctx context.Context, base string, n int) (*tabs, error) {
	c := newBrowserClient()
	if _, err := get(ctx, c, base+"/"); err != nil {
		return nil, err
	}
	t := &tabs{subscribers: &subscribers{conns: make([]*websocket.Conn, n), got: make(chan time.Time, n)}}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			u := strings.Replace(base, "http", "ws", 1) + "/live?tab=" + uuid() + "&client=" + uuid()
			conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c})
			if err != nil {
				errs <- err
				return
			}
			conn.SetReadLimit(-1)
			t.conns[i] = conn
			// The join: one message, or (since the general scope's part is
			// shared) two; it ends with the storage's health.
			var join int
			for {
				_, data, err := conn.Read(ctx)
				if err != nil {
					errs <- err
					return
				}
				join += len(data)
				if strings.Contains(string(data), `hx-target="#storage-health"`) {
					break
				}
			}
			t.join.Store(int64(join))
			go t.read(ctx, conn, false, nil)
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// fillGeneral writes keys of size bytes into the general scope until it
// holds want keys or refuses one more (429), 16 at a time, and returns how
// many it wrote.
func fillGeneral(ctx context.Context, base string, want, size int) (int, error) {
	value := `"` + strings.Repeat("x", max(0, size-2)) + `"`
	var next, wrote atomic.Int64
	var full atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			c := newBrowserClient()
			for !full.Load() && ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(want) {
					return
				}
				status, err := putStatus(ctx, c, fmt.Sprintf("%s/api/storage/general/filler-%04d", base, i), value)
				if err != nil {
					errs <- err
					return
				}
				switch status {
				case 200, 201:
					wrote.Add(1)
				case 429:
					full.Store(true)
				default:
					errs <- fmt.Errorf("fill: status %d", status)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return int(wrote.Load()), <-errs
}
