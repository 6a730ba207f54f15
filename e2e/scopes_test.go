package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/storagescopes/app/store/redistest"
)

// presence waits until a tab's presence line for scope counts tabs (and
// browsers, for general), and says text.
func (t *tab) presence(scope string, tabs, browsers int, text string) {
	t.b.t.Helper()
	t.waitFor(fmt.Sprintf("presence-%s to count %d tabs in %d browsers (%q)", scope, tabs, browsers, text), fmt.Sprintf(
		`(() => { const el = document.querySelector('[data-testid="presence-%s"]');
			return el && el.dataset.tabs === '%d' && el.dataset.browsers === '%d' && el.textContent.includes(%q); })()`,
		scope, tabs, browsers, text))
}

// origin waits until a bound control's origin says kind (and tab name).
func (t *tab) origin(scope, key, kind, tabName, who string) {
	t.b.t.Helper()
	t.waitFor(fmt.Sprintf("%s/%s to be %s %s", scope, key, kind, tabName), fmt.Sprintf(
		`(() => { const el = document.querySelector('.field [data-testid="origin-%s-%s"]');
			return el && el.dataset.origin === %q && (el.dataset.tabName || '') === %q && el.querySelector('.who').textContent === %q
				&& el.querySelector('time[datetime]') !== null; })()`, scope, key, kind, tabName, who))
}

// feedHas counts the feed's items that match a CSS selector.
func (t *tab) feedHas(sel string) int {
	t.b.t.Helper()
	return eval[int](t, fmt.Sprintf(`document.querySelectorAll('[data-testid="activity"] li%s').length`, sel))
}

// Three tabs of one browser and one of another: each knows its name, sees
// who shares each scope and who changed what, and its feed holds what its
// scopes reach; a tab that closes leaves the counts; a restart keeps the
// names and the origins.
func TestBrowserSeeingTheScopes(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	tabs := []*tab{b.open(s.URL), b.open(s.URL), b.open(s.URL)}
	other := b.context().open(s.URL)
	for i, tb := range tabs {
		name := fmt.Sprintf("Tab %d", i+1)
		tb.waitText(`[data-testid="tab-name"]`, name)
		tb.waitFor("the title to lead with "+name, fmt.Sprintf(`document.title === %q`, name+" · Home · Storage scopes"))
	}
	other.waitText(`[data-testid="tab-name"]`, "Tab 1")
	for _, tb := range append(tabs, other) {
		tb.presence("general", 4, 2, "4 tabs in 2 browsers open now")
	}
	tabs[1].presence("user", 3, 1, "3 tabs of this browser open now: Tab 1, Tab 2 (this one), Tab 3")
	tabs[1].presence("browser", 3, 1, "Tab 2 (this one)")
	other.presence("user", 1, 1, "1 tab of this browser open now: Tab 1 (this one)")

	// Tab 2 changes the global message: each tab says who did.
	tabs[1].typeText("general", "global_text", "from tab 2")
	tabs[0].waitFor("the change to be marked as it arrives", `document.querySelector('#field-general-global_text').classList.contains('arrived')`)
	tabs[1].origin("general", "global_text", "this-tab", "Tab 2", "by this tab")
	tabs[0].origin("general", "global_text", "other-tab", "Tab 2", "by Tab 2")
	tabs[2].origin("general", "global_text", "other-tab", "Tab 2", "by Tab 2")
	other.origin("general", "global_text", "other-browser", "", "by another browser")
	if n := other.feedHas(`[data-scope="general"][data-key="global_text"][data-origin="other-browser"]`); n != 1 {
		t.Errorf("the other browser's feed shows the change %d times, want once", n)
	}
	tabs[0].waitFor("tab 1's feed to say Tab 2 changed it", `document.querySelector('[data-testid="activity"] li[data-key="global_text"][data-origin="other-tab"]') !== null`)
	// Tab 1's own tab data reaches no other tab's feed; its note reaches
	// its browser's tabs, not the other browser.
	tabs[0].typeText("tab", "tab_data", "only tab 1")
	tabs[0].typeText("user", "user_note", "a note")
	tabs[2].origin("user", "user_note", "other-tab", "Tab 1", "by Tab 1")
	tabs[2].clear("general", "global_text")
	tabs[2].typeText("general", "global_text", "marker from tab 3") // every page sees it
	for _, tb := range append(tabs[1:], other) {
		tb.waitValue(field("general", "global_text"), "marker from tab 3")
		if n := tb.feedHas(`[data-scope="tab"][data-key="tab_data"]`); n != 0 {
			t.Errorf("%s's feed shows tab 1's tab data", tb.name)
		}
	}
	if n := other.feedHas(`[data-key="user_note"]`); n != 0 {
		t.Errorf("the other browser's feed shows alice's note")
	}
	if n := tabs[1].feedHas(`[data-scope="user"][data-key="user_note"][data-origin="other-tab"][data-tab-name="Tab 1"]`); n != 1 {
		t.Errorf("tab 2's feed shows tab 1's note %d times, want once", n)
	}

	// Tab 3 closes: the counts fall.
	tabs[2].close()
	tabs[0].presence("general", 3, 2, "3 tabs in 2 browsers open now")
	tabs[0].presence("user", 2, 1, "2 tabs of this browser open now: Tab 1 (this one), Tab 2")

	// A restart keeps the names and the origins.
	s.restart(t)
	tabs[0].reload()
	tabs[0].waitText(`[data-testid="tab-name"]`, "Tab 1")
	tabs[0].origin("general", "global_text", "other-tab", "Tab 3", "by Tab 3")
	tabs[0].origin("user", "user_note", "this-tab", "Tab 1", "by this tab")
	tabs[1].presence("general", 3, 2, "3 tabs in 2 browsers open now") // reconnected by themselves
}

// A change made elsewhere while this tab types is not overwritten silently:
// the field says who changed it, and takes theirs on request.
func TestBrowserConcurrentEditIsVisible(t *testing.T) {
	s := startServer(t)
	tb := newBrowser(t).open(s.URL)
	tb.typeText("general", "global_text", "mine")
	put := func(value string) {
		req, _ := http.NewRequest("PUT", s.URL+"/api/storage/general/global_text", strings.NewReader(value))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode >= 300 {
			t.Fatalf("PUT: %v %v", err, res)
		}
		res.Body.Close()
	}
	// A push that arrives while the field holds an unsaved edit changes
	// nothing of it, its version included: the save still names the version
	// the edit began from.
	tb.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#field-general-global_text').setAttribute('data-dirty', '')`))
	began := eval[string](tb, `document.querySelector('#field-general-global_text').dataset.version`)
	put(`"while you typed"`)
	tb.waitFor("the push", `[...document.querySelectorAll('#activity li[data-key="global_text"]')].some(li => li.textContent.includes('while you typed'))`)
	if got := eval[string](tb, `document.querySelector('#field-general-global_text').dataset.version`); got != began {
		t.Errorf("a push moved the version an unsaved edit began from: %s, was %s", got, began)
	}
	if got := tb.value(field("general", "global_text")); got != "mine" {
		t.Errorf("a push replaced an unsaved edit: %q", got)
	}
	tb.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#field-general-global_text').removeAttribute('data-dirty')`))

	put(`"theirs"`)
	tb.waitValue(field("general", "global_text"), "theirs")
	// This tab began its edit from the value before theirs.
	tb.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#field-general-global_text').dataset.version = '1'`))
	tb.do(chromedp.SendKeys(chromedp.CSS(field("general", "global_text")), " plus mine"))
	tb.waitFor("the field to show the conflict", `document.querySelector('#field-general-global_text').hasAttribute('data-conflict')
		&& document.querySelector('[data-testid="status-general-global_text"]').textContent.includes('Changed through the API while you typed')`)
	if got := tb.value(field("general", "global_text")); got != "theirs plus mine" {
		t.Errorf("the field lost what was typed: %q", got)
	}
	tb.do(chromedp.Click(`#field-general-global_text [data-take-theirs]`))
	tb.waitValue(field("general", "global_text"), "theirs")
	tb.waitFor("the conflict to be gone", `!document.querySelector('#field-general-global_text').hasAttribute('data-conflict')`)

	// Again, and this time keep mine: it is saved over theirs.
	put(`"theirs again"`)
	tb.waitValue(field("general", "global_text"), "theirs again")
	tb.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#field-general-global_text').dataset.version = '1'`))
	tb.do(chromedp.SendKeys(chromedp.CSS(field("general", "global_text")), " but mine"))
	tb.waitFor("the second conflict", `document.querySelector('#field-general-global_text').hasAttribute('data-conflict')`)
	tb.do(chromedp.Click(`#field-general-global_text [data-keep-mine]`))
	tb.waitSaved("general", "global_text")
	res, err := http.Get(s.URL + "/api/storage/general/global_text")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got struct{ Value string }
	json.NewDecoder(res.Body).Decode(&got)
	if got.Value != "theirs again but mine" {
		t.Errorf("after keep mine the value is %q, want %q", got.Value, "theirs again but mine")
	}
}

// With two instances on Redis, presence counts the pages of both.
func TestBrowserPresenceAcrossInstances(t *testing.T) {
	redisURL := redistest.Start(t)
	a := startServer(t, "-redis", redisURL)
	bs := startServer(t, "-redis", redisURL)
	br := newBrowser(t)
	onA := br.open(a.URL)
	onB := br.open(bs.URL)
	onA.presence("user", 2, 1, "2 tabs of this browser open now: Tab 1 (this one), Tab 2")
	onB.presence("general", 2, 1, "2 tabs in 1 browser open now")
}
