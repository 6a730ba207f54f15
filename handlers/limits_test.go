package handlers_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/storagescopes/app/handlers"
	"github.com/storagescopes/app/store"
)

func TestTooManyKeysIsRefusedWithAClearMessage(t *testing.T) {
	a := MustStartWith(t, store.Options{Limits: store.Limits{KeysPerOwner: 3}},
		func(c *handlers.Config) { c.Limits.KeysPerOwner = 3 })
	b := a.NewBrowser(t)
	for _, scope := range []string{"user", "browser"} {
		for i := range 3 {
			if res := b.API("PUT", fmt.Sprintf("%s/k%d", scope, i), `1`); res.Status >= 300 {
				t.Fatalf("%s key %d: %d %s", scope, i, res.Status, res.Body)
			}
		}
		before := state(t, b)
		res := b.API("PUT", scope+"/one-too-many", `1`)
		if res.Status != 429 || !strings.Contains(res.Body, "too many keys") {
			t.Errorf("%s fourth key: %d %s, want 429 too many keys", scope, res.Status, res.Body)
		}
		res = b.Form("POST", "/scopes/"+scope+"/entries", url.Values{"key": {"another"}, "value": {"1"}})
		if res.Status != 429 || !strings.Contains(res.Body, "too many keys") {
			t.Errorf("%s inspector: %d %s, want 429 too many keys", scope, res.Status, res.Body)
		}
		if after := state(t, b); after != before {
			t.Errorf("%s: a refused key changed something:\n%s\n%s", scope, before, after)
		}
		// Overwriting stays allowed at the cap.
		if res := b.API("PUT", scope+"/k0", `2`); res.Status >= 300 {
			t.Errorf("%s overwrite at the cap: %d %s", scope, res.Status, res.Body)
		}
	}
}

func TestBrowserScopeCookieFullIsRefused(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	value := `"` + strings.Repeat("x", 1500) + `"`
	var res response
	for i := range 5 {
		if res = b.API("PUT", fmt.Sprintf("browser/k%d", i), value); res.Status >= 300 {
			break
		}
	}
	if res.Status != 413 || !strings.Contains(res.Body, "cookie") {
		t.Fatalf("filling the cookie: %d %s, want 413 about the cookie", res.Status, res.Body)
	}
	// The cookie still works and holds what fitted.
	if got := b.API("GET", "browser/k0", ""); got.Status != 200 {
		t.Errorf("after a refused write the cookie lost k0: %d %s", got.Status, got.Body)
	}
}

func TestWriteRateLimit(t *testing.T) {
	a := MustStart(t, func(c *handlers.Config) { c.WriteRate = 1 }) // bursts of 3
	b := a.NewBrowser(t)
	b.Page("/")
	for i := range 3 {
		if res := b.Type("user", "user_note", fmt.Sprint("edit ", i)); res.Status != 200 {
			t.Fatalf("write %d within the burst: %d %s", i, res.Status, res.Body)
		}
	}
	res := b.Type("user", "user_note", "one too many")
	if res.Status != 429 || !strings.Contains(res.Body, "too many writes") || res.Header.Get("Retry-After") == "" {
		t.Errorf("over the rate: %d %q (Retry-After %q), want 429", res.Status, res.Body, res.Header.Get("Retry-After"))
	}
	if got := b.API("GET", "user/user_note", ""); !strings.Contains(got.Body, "edit 2") {
		t.Errorf("a refused write changed the note: %s", got.Body)
	}
	// Page views are not writes a person makes: they are never limited.
	for range 5 {
		b.Page("/")
	}
	// Another browser has its own bucket.
	if res := a.NewBrowser(t).Type("general", "global_text", "hi"); res.Status != 200 {
		t.Errorf("another browser was limited: %d", res.Status)
	}
}

func TestClientScopesPerUserAreCapped(t *testing.T) {
	a := MustStart(t, func(c *handlers.Config) { c.Limits.ClientsPerUser = 2 })
	b := a.NewBrowser(t)
	b.Page("/")
	value := func(p *page) string {
		t.Helper()
		panel := b.Do("POST", "/scopes/client/visit", nil, p.header())
		return inputValue(t, mustParse(t, panel.Body), "Client")
	}
	pa := b.Live()
	pa.Joined()
	b.typeAs(pa, "client", "client_note", "page A")
	pb := b.Live()
	pb.Joined()
	b.typeAs(pb, "client", "client_note", "page B")
	pa.conn.CloseNow() // page A goes away

	// A third page load is over the cap of 2: it evicts page A's scope
	// (closed, and the least recently used), not B's.
	pc := b.Live()
	pc.Joined()
	b.typeAs(pc, "client", "client_note", "page C")
	if got := value(pb); got != "page B" {
		t.Errorf("page B lost its client scope: %q", got)
	}
	if got := value(pc); got != "page C" {
		t.Errorf("page C lost its client scope: %q", got)
	}
	if got := value(pa); got != "" {
		t.Errorf("page A's client scope survived over the cap: %q", got)
	}
}

func TestVisitCounterIsExactUnderConcurrency(t *testing.T) {
	a := MustStart(t)
	const clients, each = 64, 5
	var wg sync.WaitGroup
	for range clients {
		b := a.NewBrowser(t)
		wg.Go(func() {
			for range each {
				if res := b.Do("POST", "/scopes/tab/visit", nil, nil); res.Status != 200 {
					t.Errorf("tab visit: %d %s", res.Status, res.Body)
				}
			}
		})
	}
	wg.Wait()
	res := a.NewBrowser(t).API("GET", "general/visits", "")
	if want := fmt.Sprintf(`"value":%d`, clients*each); !strings.Contains(res.Body, want) {
		t.Errorf("general visits = %s, want %s", res.Body, want)
	}
}

func TestSecurityHeaders(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	res := b.Do("GET", "/", nil, map[string]string{"HX-Request": ""})
	for h, want := range map[string]string{
		"Content-Security-Policy": "script-src 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
		"X-Frame-Options":         "DENY",
	} {
		if got := res.Header.Get(h); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to contain %q", h, got, want)
		}
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors 'none'", "style-src 'self'", "default-src 'self'", "object-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP allows unsafe code: %q", csp)
	}
	// The page has no inline script or style for the CSP to block.
	doc := mustParse(t, res.Body)
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		if _, ok := s.Attr("src"); !ok {
			t.Errorf("inline script: %s", s.Text())
		}
	})
	if doc.Find("style, [style]").Length() > 0 {
		t.Errorf("inline style in the page")
	}
	// Static files are versioned and cached for good.
	src, _ := doc.Find(`script[src*="htmx"]`).Attr("src")
	res = b.Do("GET", src, nil, nil)
	if res.Status != 200 || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("GET %s: %d, Cache-Control %q", src, res.Status, res.Header.Get("Cache-Control"))
	}
}
