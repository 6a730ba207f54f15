package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// 1. The seed's walkthrough.
func TestBrowserSeedWalkthrough(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	tab1 := b.open(s.URL)
	tab1.typeText("general", "global_text", "Hello from tab 1")
	tab1.typeText("user", "user_note", "my persistent note")
	tab1.typeText("tab", "tab_data", "only this tab")

	tab2 := b.open(s.URL)
	tab2.checkValues("tab 2", map[string]string{
		field("general", "global_text"): "Hello from tab 1",
		field("user", "user_note"):      "my persistent note",
		field("tab", "tab_data"):        "",
	})

	tab1.close()
	tab2.close()
	tab3 := b.open(s.URL)
	tab3.checkValues("new tab after closing all", map[string]string{
		field("general", "global_text"): "Hello from tab 1",
		field("user", "user_note"):      "my persistent note",
		field("tab", "tab_data"):        "",
	})
}

// 2. Visit counters: a reload counts in the tab, a new tab starts at 1.
func TestBrowserReloadKeepsTabDataAndCounts(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	tab1 := b.open(s.URL)
	tab1.typeText("tab", "tab_data", "survives reload")
	tab1.checkTexts("first load", map[string]string{"visits-general": "1", "visits-user": "1", "visits-browser": "1", "visits-tab": "1", "visits-client": "1"})
	tab1.reload()
	if got := tab1.value(field("tab", "tab_data")); got != "survives reload" {
		t.Errorf("tab data after reload = %q", got)
	}
	tab1.checkTexts("after reload", map[string]string{"visits-general": "2", "visits-user": "2", "visits-browser": "2", "visits-tab": "2", "visits-client": "1"})
	tab2 := b.open(s.URL + "/settings")
	tab2.checkTexts("new tab", map[string]string{"visits-general": "3", "visits-user": "3", "visits-tab": "1", "visits-client": "1"})
	// The first tab's counters follow live.
	tab1.waitText(`[data-testid="visits-general"]`, "3")
}

// 3. kill -9 right after the last saved indicator: everything is back.
func TestBrowserRestartKeepsEverything(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	tab1 := b.open(s.URL)
	boot := tab1.text(`[data-testid="boot-number"]`)
	tab1.typeText("general", "global_text", "general survives")
	tab1.typeText("user", "user_note", "user survives")
	tab1.typeText("browser", "browser_note", "browser survives")
	tab1.typeText("tab", "tab_data", "tab survives")

	s.restart(t) // SIGKILL, then start on the same file and port
	tab1.reload()
	tab1.checkValues("after kill -9 and restart", map[string]string{
		field("general", "global_text"):  "general survives",
		field("user", "user_note"):       "user survives",
		field("browser", "browser_note"): "browser survives",
		field("tab", "tab_data"):         "tab survives",
	})
	if got := tab1.text(`[data-testid="boot-number"]`); got == boot {
		t.Errorf("boot number still %s after a restart", got)
	}
}

// 4. Live: typing in one tab shows in the other; the typing tab never
// loses characters.
func TestBrowserLiveTyping(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	tab1, tab2 := b.open(s.URL), b.open(s.URL)

	tab1.typeText("general", "global_text", "live!")
	tab2.waitValue(field("general", "global_text"), "live!")

	long := strings.Repeat("The quick brown fox jumps. ", 8)[:200]
	tab1.clear("general", "global_text")
	tab1.do(chromedp.SendKeys(chromedp.CSS(field("general", "global_text")), long))
	tab1.waitSaved("general", "global_text")
	if got := tab1.value(field("general", "global_text")); got != long {
		t.Errorf("typing tab lost characters:\n got %q\nwant %q", got, long)
	}
	tab2.waitValue(field("general", "global_text"), long)
}

// 5. Dark mode flips every tab of the browser, and renders dark from the
// server.
func TestBrowserDarkMode(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	tab1, tab2 := b.open(s.URL), b.open(s.URL)
	light := eval[string](tab2, `getComputedStyle(document.body).backgroundColor`)

	tab1.do(chromedp.Click(chromedp.CSS(field("user", "dark_mode"))))
	tab1.waitSaved("user", "dark_mode")
	tab2.waitFor("tab 2 to turn dark", fmt.Sprintf(`getComputedStyle(document.body).backgroundColor !== %q`, light))

	tab2.reload()
	if !eval[bool](tab2, `document.querySelector('#input-user-dark_mode').defaultChecked`) {
		t.Errorf("the server did not render Dark Mode checked")
	}
	if got := eval[string](tab2, `getComputedStyle(document.body).backgroundColor`); got == light {
		t.Errorf("reloaded page is light (%s)", got)
	}
}

// 6. A duplicated tab starts with a copy, then the two are independent.
func TestBrowserDuplicatedTab(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	orig := b.open(s.URL)
	orig.typeText("tab", "tab_data", "copied")
	origID := eval[string](orig, `sessionStorage.getItem('tab-id')`)

	ch := chromedp.WaitNewTarget(orig.ctx, func(i *target.Info) bool { return i.Type == "page" })
	orig.do(chromedp.Evaluate[chromedp.Void](`void window.open(location.href)`))
	var id target.ID
	select {
	case id = <-ch:
	case <-time.After(stepTimeout):
		t.Fatal("the duplicate did not open")
	}
	dup := b.attach(id)
	if got := dup.value(field("tab", "tab_data")); got != "copied" {
		t.Errorf("duplicate's tab data = %q, want %q", got, "copied")
	}
	if dupID := eval[string](dup, `sessionStorage.getItem('tab-id')`); dupID == origID {
		t.Errorf("duplicate kept the original's tab id %s", dupID)
	}
	dup.clear("tab", "tab_data")
	dup.typeText("tab", "tab_data", "changed in the copy")
	orig.reload()
	if got := orig.value(field("tab", "tab_data")); got != "copied" {
		t.Errorf("original's tab data = %q after the copy changed, want %q", got, "copied")
	}
}

// 7. Two browsers: user and browser values are private, general is shared.
func TestBrowserTwoBrowsers(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	other := b.context()
	mine := b.open(s.URL)
	theirs := other.open(s.URL)

	mine.typeText("user", "user_note", "mine only")
	mine.typeText("browser", "browser_note", "my cookie")
	mine.typeText("general", "global_text", "for everyone")
	theirs.waitValue(field("general", "global_text"), "for everyone")
	theirs.reload()
	if got := theirs.value(field("user", "user_note")); got != "" {
		t.Errorf("other browser sees the note %q", got)
	}
	if got := theirs.value(field("browser", "browser_note")); got != "" {
		t.Errorf("other browser sees the browser value %q", got)
	}
	if got := theirs.value(field("general", "global_text")); got != "for everyone" {
		t.Errorf("other browser's general = %q", got)
	}
}

// 8. Ten tabs of one browser at once: all load, write and get pushes.
func TestBrowserTenTabs(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	var tabs []*tab
	for range 10 {
		tabs = append(tabs, b.open(s.URL))
	}
	for i, tb := range tabs {
		tb.clear("user", "user_note")
		tb.typeText("user", "user_note", fmt.Sprintf("note from tab %d", i+1))
	}
	for _, tb := range tabs {
		tb.waitValue(field("user", "user_note"), "note from tab 10")
	}
}

// 9. The server restarts under open tabs: they show reconnecting, then
// connected, and current values without a reload.
func TestBrowserReconnectAfterRestart(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	tab1 := b.open(s.URL)
	tab1.typeText("general", "global_text", "before restart")

	s.Kill()
	tab1.waitFor("the indicator to say reconnecting", `document.querySelector('#live').dataset.state === 'reconnecting'`)
	s.MustRestart(t)
	// A change made while the page is away reaches it in the snapshot.
	req, _ := http.NewRequest("PUT", s.URL+"/api/storage/general/global_text", strings.NewReader(`"after restart"`))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode >= 300 {
		t.Fatalf("PUT after restart: %v %v", err, res)
	}
	res.Body.Close()
	tab1.waitFor("the indicator to say connected", `document.querySelector('#live').dataset.state === 'connected'`)
	tab1.waitValue(field("general", "global_text"), "after restart")
}

// 10. Inspector: set a JSON object, see it, delete it, clear after confirming.
func TestBrowserInspector(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	tab1 := b.open(s.URL)
	tab1.do(
		chromedp.SendKeys(chromedp.CSS("#set-key-user"), "prefs"),
		chromedp.SendKeys(chromedp.CSS("#set-value-user"), `{"theme": "dark", "sizes": [1, 2]}`),
		chromedp.Click(chromedp.CSS(`#panel-user .set-form button[type=submit]`)),
	)
	tab1.waitFor("prefs to be listed", `document.querySelector('#entries-user tr[data-key="prefs"] code')?.textContent === '{"theme":"dark","sizes":[1,2]}'`)
	tab1.waitFor("the inspector to say so", `document.querySelector('#inspector-status-user').textContent.includes('Set "prefs"')`)
	if got := tab1.value("#set-key-user"); got != "" {
		t.Errorf("the set form kept %q after a success", got)
	}

	tab1.do(chromedp.Click(chromedp.CSS(`#entries-user tr[data-key="prefs"] button`)))
	tab1.waitFor("prefs to be gone", `!document.querySelector('#entries-user tr[data-key="prefs"]')`)
	tab1.waitFor("the inspector to say so", `document.querySelector('#inspector-status-user').textContent.includes('Deleted "prefs"')`)

	// A bad value is refused with a message, and nothing is stored.
	tab1.do(
		chromedp.SendKeys(chromedp.CSS("#set-key-general"), "bad"),
		chromedp.SendKeys(chromedp.CSS("#set-value-general"), `{oops`),
		chromedp.Click(chromedp.CSS(`#panel-general .set-form button[type=submit]`)),
	)
	tab1.waitFor("the error message", `document.querySelector('#inspector-status-general').textContent.includes('not valid JSON')`)

	dialogs := chromedp.Events(tab1.ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			if ev.Type == page.DialogTypeConfirm {
				ctx, cancel := context.WithTimeout(tab1.ctx, 5*time.Second)
				chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
				cancel()
				return
			}
		}
	}()
	tab1.do(chromedp.Click(chromedp.CSS(`#panel-user .inspector-actions button.danger`)))
	tab1.waitFor("the user scope to be empty, and to say so", `!document.querySelector('#entries-user tr[data-key]')
		&& getComputedStyle(document.querySelector('#entries-user .empty')).display !== 'none'`)
	tab1.waitFor("the inspector to say so", `document.querySelector('#inspector-status-user').textContent.includes('Cleared')`)
	tab1.waitValue(field("user", "user_note"), "")
}
