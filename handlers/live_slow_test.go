package handlers_test

// Live pages that read slowly, or not at all, while writers write.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storagescopes/app/handlers"
	"github.com/storagescopes/app/internal/proctest"
)

// A page that reads, only more slowly than the writers write, is never
// dropped, and ends on the final version of every key: a push carries one
// key, a slow page gets only the newest of each, and one that falls too far
// behind is sent what it shows afresh.
func TestLiveSlowReaderIsNeverDropped(t *testing.T) {
	a := MustStart(t)
	slow := a.NewBrowser(t)
	slow.Page("/")
	p := slow.dial() // read below, slowly
	writer := a.NewBrowser(t)
	writer.Page("/")

	// Big values make every push large, so the socket's buffers fill and
	// pushes wait for the page.
	const keys, writes = 40, 300
	wrote := make(chan error, 1)
	go func() {
		for i := range writes {
			key := fmt.Sprintf("k%02d", i%keys)
			value := fmt.Sprintf(`"write %d %s"`, i, strings.Repeat("x", 15_000))
			if res := writer.API("PUT", "general/"+key, value); res.Status >= 300 {
				wrote <- fmt.Errorf("PUT %s: %d %s", key, res.Status, res.Body)
				return
			}
		}
		wrote <- nil
	}()

	rowRE := regexp.MustCompile(`<tr data-key="(k\d\d)" data-version="(\d+)"`)
	seen := map[string]int64{} // the newest version of each key the page was shown
	var final map[string]int64
	for reads := 0; ; reads++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, data, err := p.conn.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("the slow page's connection ended after %d messages: %v", reads, err)
		}
		rows := rowRE.FindAllStringSubmatch(string(data), -1)
		// A push carries the one key that changed; only a join or a fresh
		// view (which swaps the rows in whole) carries more.
		if fresh := strings.Contains(string(data), `hx-swap="entries"`); !fresh && len(rows) > 1 {
			t.Fatalf("a push carries %d keys' rows (%d bytes), not the one that changed", len(rows), len(data))
		}
		for _, m := range rows {
			v, _ := strconv.ParseInt(m[2], 10, 64)
			seen[m[1]] = max(seen[m[1]], v)
		}
		if final == nil {
			select {
			case err := <-wrote:
				if err != nil {
					t.Fatal(err)
				}
				final = map[string]int64{}
				for i := range keys {
					key := fmt.Sprintf("k%02d", i)
					var e struct{ Version int64 }
					json.Unmarshal([]byte(writer.API("GET", "general/"+key, "").Body), &e)
					final[key] = e.Version
				}
			default:
			}
		}
		if final != nil && maps.EqualFunc(final, seen, func(want, got int64) bool { return got >= want }) {
			if !maps.Equal(final, seen) {
				t.Errorf("the page was shown versions that were never written: %v, want %v", seen, final)
			}
			return
		}
		time.Sleep(20 * time.Millisecond) // a page slower than the writers
	}
}

// A page that reads nothing at all is dropped once a push has waited on it
// for the stall limit, and the writers and the other pages never wait for
// it.
func TestLiveStuckPageIsDroppedWithoutBlockingWriters(t *testing.T) {
	log := &proctest.Log{}
	a := MustStart(t, func(c *handlers.Config) {
		c.LiveStall = 500 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(log, nil))
	})
	slow := a.NewBrowser(t)
	slow.Page("/")
	stuck := slow.dial() // never reads
	fast := a.NewBrowser(t)
	fast.Page("/")
	pf := fast.Live()
	pf.Joined()

	// Big values of a bound control make every push large (a page is sent
	// a bound control's whole value, but only a row's start), so the stuck
	// page's socket buffers fill and a push waits on it. Writes go on until
	// it is dropped.
	big := strings.Repeat("x", 15_000)
	writer := a.NewBrowser(t)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; !strings.Contains(log.String(), "dropped a page that stopped reading"); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the stuck page was not dropped after %d writes; log:\n%s", i, log)
		}
		res := writer.API("PUT", "general/global_text", fmt.Sprintf(`"%d%s"`, i, big))
		if res.Status >= 300 {
			t.Fatalf("write %d: %d %s", i, res.Status, res.Body)
		}
	}
	writer.Type("general", "global_text", "final")
	// The reading page was never dropped, and ends on the current state.
	pf.Expect(`value="final"`)

	// The stuck page finds its connection closed once it reads what was
	// buffered.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := stuck.conn.Read(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the stuck page's connection stayed open")
			}
			break
		}
	}
}

// Two tabs of two browsers write one general key at the same time; when
// the writes stop, each tab shows the last committed version.
func TestLiveConcurrentWritersConverge(t *testing.T) {
	a := MustStart(t)
	type tab struct {
		b    *browser
		p    *page
		mu   sync.Mutex
		seen map[int64]string // versions of global_text this tab was shown
	}
	var tabs []*tab
	for range 2 {
		b := a.NewBrowser(t)
		b.Page("/")
		tb := &tab{b: b, p: b.Live(), seen: map[int64]string{}}
		tb.p.Joined()
		tabs = append(tabs, tb)
	}
	fieldRE := regexp.MustCompile(`hx-target="#field-general-global_text" hx-swap="field"><data value="([^"]*)" data-v="(\d+)"`)
	record := func(tb *tab, html string) {
		if m := fieldRE.FindStringSubmatch(html); m != nil {
			v, _ := strconv.ParseInt(m[2], 10, 64)
			tb.mu.Lock()
			tb.seen[v] = m[1]
			tb.mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for i, tb := range tabs {
		wg.Go(func() {
			for j := range 50 {
				h := tb.p.header()
				h["Content-Type"] = "application/x-www-form-urlencoded"
				res := tb.b.Do("POST", "/scopes/general/entries", strings.NewReader(url.Values{
					"key": {"global_text"}, "value": {fmt.Sprintf(`"tab %d write %d"`, i, j)}}.Encode()), h)
				record(tb, res.Body)
			}
		})
	}
	wg.Wait()
	final := a.NewBrowser(t).API("GET", "general/global_text", "")
	var want struct {
		Value   string
		Version int64
	}
	json.Unmarshal([]byte(final.Body), &want)
	for i, tb := range tabs {
		// Read pushes until this tab has been shown the final version.
		deadline := time.After(5 * time.Second)
		for {
			tb.mu.Lock()
			latest := int64(0)
			for v := range tb.seen {
				latest = max(latest, v)
			}
			got := tb.seen[latest]
			tb.mu.Unlock()
			if latest >= want.Version {
				if latest != want.Version || got != want.Value {
					t.Errorf("tab %d ended on v%d %q, want v%d %q", i, latest, got, want.Version, want.Value)
				}
				break
			}
			select {
			case m := <-tb.p.msgs:
				record(tb, m)
			case <-deadline:
				t.Fatalf("tab %d never saw v%d (latest v%d)", i, want.Version, latest)
			}
		}
	}
}
