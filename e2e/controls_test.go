package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// setControl sets a range or a select as a person would and waits until
// it is saved.
func (t *tab) setControl(scope, key, value string) {
	t.b.t.Helper()
	t.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const el = document.querySelector(%q);
		el.value = %q; el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); })()`,
		field(scope, key), value)))
	t.waitSaved(scope, key)
}

// The buttons restart and crash the server; every open tab shows it
// reconnecting, then the new boot and every persistent value, with no
// reload; the client scope is gone, and the page says so.
func TestBrowserRestartAndCrashButtons(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	tabs := []*tab{b.open(s.URL), b.open(s.URL), b.open(s.URL)}
	tabs[0].typeText("general", "global_text", "kept")
	tabs[0].typeText("user", "user_note", "kept too")
	tabs[1].typeText("client", "client_note", "this page load only")
	for i, button := range []string{"Restart server", "Crash server"} {
		boot := tabs[0].text(`[data-testid="boot-number"]`)
		for _, tb := range tabs {
			tb.do(chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
		}
		tabs[i].do(chromedp.Click(fmt.Sprintf(`//footer//button[normalize-space()=%q]`, button)))
		for _, tb := range tabs {
			tb.waitFor("the page to say it reconnects", `document.querySelector('#live').dataset.state === 'reconnecting'`)
		}
		for _, tb := range tabs {
			tb.waitFor("the new boot", fmt.Sprintf(`document.querySelector('[data-testid="boot-number"]').textContent !== %q
				&& document.querySelector('#live').dataset.state === 'connected'`, boot))
			tb.checkValues(button, map[string]string{field("general", "global_text"): "kept", field("user", "user_note"): "kept too"})
			if !eval[bool](tb, `window.notReloaded === true`) {
				t.Errorf("%s: %s reloaded", button, tb.name)
			}
		}
		tabs[1].waitValue(field("client", "client_note"), "")
		tabs[1].waitFor("the page to say the client scope is gone", `document.querySelector('#notice-client').textContent.includes('empty now')`)
	}
}

// The font size follows the slider in the browser's other tabs; the color
// tints only its tab; a 16 KiB value leaves the panel short.
func TestBrowserSliderColorAndLongValues(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	one, two := b.open(s.URL), b.open(s.URL)
	fontSize := func(tb *tab) string { return eval[string](tb, `getComputedStyle(document.documentElement).fontSize`) }
	if got := fontSize(two); got != "16px" {
		t.Errorf("the page starts at %s, want 16px", got)
	}
	one.setControl("user", "font_size", "22")
	two.waitFor("the other tab's font to follow", `getComputedStyle(document.documentElement).fontSize === '22px'`)
	two.reload()
	if got := fontSize(two); got != "22px" {
		t.Errorf("after a reload the page is at %s, want 22px (drawn by the server)", got)
	}
	plain := eval[string](two, `getComputedStyle(document.querySelector('header.top')).borderBottomColor`)
	one.setControl("tab", "tab_color", "red")
	one.waitFor("this tab's header to be tinted", fmt.Sprintf(`getComputedStyle(document.querySelector('header.top')).borderBottomColor !== %q`, plain))
	one.waitFor("this tab's favicon to be tinted", `document.querySelector('link[rel="icon"]').href.startsWith('data:image/svg+xml')`)
	two.reload()
	if got := eval[string](two, `getComputedStyle(document.querySelector('header.top')).borderBottomColor`); got != plain {
		t.Errorf("the other tab's header is tinted too: %s", got)
	}

	one.setControl("user", "font_size", "16")
	rowHeight := func(key string) float64 {
		return eval[float64](one, fmt.Sprintf(`document.querySelector('#entries-general tr[data-key=%q]').getBoundingClientRect().height`, key))
	}
	req, _ := http.NewRequest("PUT", s.URL+"/api/storage/general/big", strings.NewReader(`"`+strings.Repeat("long words ", 1480)+`"`))
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode >= 300 {
		t.Fatalf("PUT a 16 KiB value: %v %v", err, res)
	}
	one.waitFor("the long value to arrive", `document.querySelector('#entries-general tr[data-key="big"] .size') !== null`)
	// The row of a 16 KiB value is as high as a few rows of a short one.
	if long, short := rowHeight("big"), rowHeight("visits"); long > 3*short {
		t.Errorf("the row of a 16 KiB value is %.0f px high, a short one's %.0f", long, short)
	}
	one.do(chromedp.Click(chromedp.CSS(`#entries-general tr[data-key="big"] summary`)))
	one.waitFor("the value to open in place", `document.querySelector('#entries-general tr[data-key="big"] details').open`)
}

// axe-core finds no accessibility violation on either page, light or dark,
// with the inspector open and an error showing, nor on an error page.
func TestBrowserAccessibility(t *testing.T) {
	s := startServer(t)
	tb := newBrowser(t).open(s.URL)
	tb.typeText("user", "user_note", "a note")
	audit := tb.audit
	for _, path := range []string{"/", "/settings"} {
		for _, dark := range []bool{false, true} {
			tb.do(chromedp.Navigate(s.URL + path))
			tb.ready()
			checked := eval[bool](tb, `document.querySelector('#input-user-dark_mode').checked`)
			if checked != dark {
				tb.do(chromedp.Click(chromedp.CSS(field("user", "dark_mode"))))
				tb.waitSaved("user", "dark_mode")
			}
			// An error showing: a value that is not JSON in the inspector.
			tb.do(chromedp.SendKeys(chromedp.CSS(`#set-key-general`), "k"), chromedp.SendKeys(chromedp.CSS(`#set-value-general`), "{oops"),
				chromedp.Click(chromedp.CSS(`#panel-general .set-form button`)))
			tb.waitFor("the error", `document.querySelector('[data-testid="inspector-status-general"]').textContent.includes('not valid JSON')`)
			audit(fmt.Sprintf("%s, dark %v", path, dark))
		}
	}
	// The page a navigation gets when it fails.
	tb.do(chromedp.Navigate(s.URL + "/no-such-page"))
	tb.waitFor("the error page", `document.querySelector('[data-testid="error-page"]') !== null`)
	audit("the 404 page")
}
