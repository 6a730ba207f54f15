package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/storagescopes/app/store/redistest"
)

// liveSays waits until the live indicator is in state and reads text.
func (t *tab) liveSays(state, text string) {
	t.b.t.Helper()
	t.waitFor(fmt.Sprintf("the live indicator to read %q", text), fmt.Sprintf(
		`document.querySelector('#live')?.dataset.state === %q && document.querySelector('#live .live-text').textContent === %q`, state, text))
}

// statusSays waits until the status beside a bound field reads text.
func (t *tab) statusSays(scope, key, text string) {
	t.b.t.Helper()
	t.waitFor(fmt.Sprintf("%s/%s's status to read %q", scope, key, text), fmt.Sprintf(
		`document.querySelector('[data-testid="status-%s-%s"]')?.textContent.includes(%q)`, scope, key, text))
}

// waitThroughReloads polls a JS condition while the page may be reloading
// itself (a poll cut short by a navigation is tried again).
func (t *tab) waitThroughReloads(what, js string) {
	t.b.t.Helper()
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(t.ctx, time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.b.t.Fatalf("%s: waiting for %s: %v", t.name, what, err)
		}
	}
}

// Redis stops under open pages: they say so, a write says nothing was
// changed and waits, a new page gets the error page, which reloads itself
// into the app once Redis is back, and the open page goes on where it was,
// its waiting edit saved.
func TestBrowserRedisLost(t *testing.T) {
	needChromium(t)
	rs := redistest.StartServer(t)
	s := startServer(t, "-redis", rs.URL)
	br := newBrowser(t)
	tab1 := br.open(s.URL)
	tab1.typeText("general", "global_text", "before")

	rs.Stop()
	tab1.liveSays("unavailable", "Storage unavailable")
	tab1.do(chromedp.SendKeys(chromedp.CSS(field("general", "global_text")), " during"))
	tab1.statusSays("general", "global_text", "Storage is unavailable; nothing was changed")

	tab2 := br.navigate(s.URL + "/settings")
	tab2.waitFor("the error page", `document.querySelector('[data-testid="error-message"]')?.textContent === 'Storage is unavailable; nothing was changed'`)

	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	// The edit made while Redis was down waited, and is saved by itself.
	tab1.waitSaved("general", "global_text")
	tab1.liveSays("connected", "Live")
	tab2.waitThroughReloads("the error page to reload itself into the app", `document.querySelector('#live')?.dataset.state === 'connected'`)
	tab2.ready()
	tab2.waitValue(field("general", "global_text"), "before during")
	tab1.clear("general", "global_text")
	tab1.typeText("general", "global_text", "after")
	tab2.waitValue(field("general", "global_text"), "after")
}
