package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/storagescopes/app/handlers"
	"github.com/storagescopes/app/internal/proctest"
)

// controls are the control of each scope that the survival walk sets and
// reads.
var controls = map[string]string{
	"general": field("general", "global_text"), "user": field("user", "user_note"),
	"browser": field("browser", "browser_note"), "tab": field("tab", "tab_data"),
	"client": field("client", "client_note"), "url": field("url", "link_data"), "local": field("local", "local_data"),
}

// setAll sets every scope's control to "kept in {scope}" and waits until
// each is kept (saved, in the address, in localStorage).
func (t *tab) setAll() {
	t.b.t.Helper()
	for scope := range controls {
		t.do(chromedp.SendKeys(chromedp.CSS(controls[scope]), "kept in "+scope))
	}
	for scope := range controls {
		t.waitFor(scope+" kept", fmt.Sprintf(`document.querySelector('[data-testid="status-%s-%s"]').dataset.state === 'saved'`,
			scope, strings.TrimPrefix(controls[scope], "#input-"+scope+"-")))
	}
}

// TestBrowserSurvivalTable walks the table of what survives what
// (handlers.Survival), event by event, with the default flags (the secret
// generated and kept in the database): every scope's value set in one tab,
// the event done as a person does it, then the page loaded and each scope's
// control read, against every cell.
func TestBrowserSurvivalTable(t *testing.T) {
	needChromium(t)
	for _, event := range handlers.SurvivalEvents {
		t.Run(event, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "storage.db")
			s := &server{proctest.MustStart(t, serverProg, "-addr", "127.0.0.1:0", "-db", db)}
			b := newBrowser(t)
			one := b.open(s.URL)
			one.setAll()
			if !strings.Contains(eval[string](one, `location.search`), "link_data=") {
				t.Fatal("the url scope's value is not in the address")
			}
			var look *tab
			switch event {
			case handlers.EventReload:
				one.reload()
				look = one
			case handlers.EventNewTab:
				look = b.open(s.URL)
			case handlers.EventDuplicateTab:
				ch := chromedp.WaitNewTarget(one.ctx, func(i *target.Info) bool { return i.Type == "page" })
				one.do(chromedp.Evaluate[chromedp.Void](`void window.open(location.href)`))
				select {
				case id := <-ch:
					look = b.attach(id)
				case <-time.After(stepTimeout):
					t.Fatal("the duplicate did not open")
				}
			case handlers.EventOtherBrowser:
				look = b.context().open(eval[string](one, `location.href`))
			case handlers.EventRestart:
				s.restart(t)
				one.reload()
				look = one
			case handlers.EventDatabaseDeleted:
				s.Kill()
				for _, f := range []string{db, db + "-wal", db + "-shm"} {
					if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
						t.Fatal(err)
					}
				}
				s.MustRestart(t)
				one.reload()
				look = one
			case handlers.EventCookieDeleted:
				if _, err := chromedp.Call(one.ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
					t.Fatal(err)
				}
				one.reload()
				look = one
			default:
				t.Fatalf("no way to do %q", event)
			}
			for _, row := range handlers.Survival {
				for _, cell := range row.Cells {
					if cell.Event != event {
						continue
					}
					got := look.value(controls[row.Scope])
					if survived := got == "kept in "+row.Scope; survived != cell.Survives {
						t.Errorf("%s after %s: %q; the table says survives=%v (%s)", row.Scope, event, got, cell.Survives, cell.Why)
					}
				}
			}
		})
	}
}

// The url scope: a value typed in one tab is in its link, which shows it in
// another browser; an edit over the bound says so and leaves the address
// as it was; a link over the bound draws an empty scope and says why.
func TestBrowserURLScope(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	one := b.open(s.URL)
	entries := eval[int](one, `history.length`)
	one.do(chromedp.SendKeys(chromedp.CSS(controls["url"]), "hello <&> 💙"))
	one.waitFor("the address", `document.querySelector('[data-testid="status-url-link_data"]').dataset.state === 'saved'`)
	link := eval[string](one, `location.href`)
	other := b.context().open(link)
	other.checkValues("the link in another browser", map[string]string{controls["url"]: "hello <&> 💙"})
	if n := eval[int](one, `history.length`); n != entries {
		t.Errorf("typing made %d history entries, want none", n-entries)
	}

	one.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(() => { const el = document.querySelector('#input-url-link_data'); el.value += %q; el.dispatchEvent(new Event('input', {bubbles: true})); })()`,
		strings.Repeat("x", 2100))))
	one.waitFor("the edit to be refused", `document.querySelector('[data-testid="status-url-link_data"]').dataset.state === 'error'`)
	if got := eval[string](one, `location.href`); got != link {
		t.Errorf("an edit over the bound changed the address to %.80s…", got)
	}
	long := b.open(s.URL + "/?link_data=" + strings.Repeat("y", 2100))
	long.checkValues("a link over the bound", map[string]string{controls["url"]: ""})
	if note := long.text(`[data-testid="url-note"]`); !strings.Contains(note, "2 KiB") {
		t.Errorf("a link over the bound says %q", note)
	}
	long.audit("the url and local panels and the survival table")
}

// The local scope: a value typed in one tab reaches the browser's other tab
// at once, also while the server is down; the inspector deletes and clears
// only the scope's own keys of localStorage.
func TestBrowserLocalScope(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	one := b.open(s.URL)
	two := b.open(s.URL)
	one.do(chromedp.Evaluate[chromedp.Void](`localStorage.setItem('not-ours', 'keep me')`))
	s.Kill()
	one.do(chromedp.SendKeys(chromedp.CSS(controls["local"]), "while the server is down"))
	two.waitValue(controls["local"], "while the server is down")
	two.waitFor("the other tab's inspector", `document.querySelector('#entries-local tr[data-key="local_data"]') !== null`)
	s.MustRestart(t)

	one.do(chromedp.Evaluate[chromedp.Void](`localStorage.setItem('scopes:extra', '1'); dispatchEvent(new StorageEvent('storage', {key: 'scopes:extra'}))`))
	one.waitFor("the extra key", `document.querySelector('#entries-local tr[data-key="extra"]') !== null`)
	one.do(chromedp.Click(chromedp.CSS(`#entries-local tr[data-key="extra"] [data-local-delete]`)))
	one.waitFor("the delete", `document.querySelector('#entries-local tr[data-key="extra"]') === null && localStorage.getItem('scopes:extra') === null`)
	one.do(chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`), chromedp.Click(chromedp.CSS(`[data-local-clear]`)))
	two.waitValue(controls["local"], "")
	if got := eval[string](one, `localStorage.getItem('not-ours') + '/' + document.querySelectorAll('#entries-local tbody tr').length`); got != "keep me/0" {
		t.Errorf("after the clear: %s, want another key kept and no row", got)
	}
}
