package e2e

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/storagescopes/app/internal/proctest"
)

// TestBrowserSeedExample runs examples/seed, the seed's page written on
// package scopes alone, as a person tries it: two tabs of one browser share
// the general and user scopes but not the tab's, Dark Mode and the greeting
// follow live, a restart keeps every value (each tab's in its own tab), and
// another browser sees only the general scope.
func TestBrowserSeedExample(t *testing.T) {
	needChromium(t)
	prog, err := proctest.Build(context.Background(), "./examples/seed", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	seed := &server{proctest.MustStart(t, prog, "-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "seed.db"))}
	b := newBrowser(t)
	up := func(tb *tab) *tab {
		tb.waitFor("the seed's page to be up", `document.querySelector('#input-tab-tab_data') && document.querySelector('#live')?.dataset.state === 'connected'`)
		return tb
	}
	greeting := `[data-testid="text-user-username"]`

	one := up(b.navigate(seed.URL))
	if got := one.text(greeting); got != "Guest" {
		t.Errorf("a first visit's greeting names %q, want Guest", got)
	}
	one.typeText("general", "global_text", "Hello, everyone")
	one.typeText("user", "user_note", "my note")
	one.typeText("tab", "tab_data", "first tab")
	one.typeText("user", "username", "Ann")
	one.waitText(greeting, "Ann")

	two := up(b.navigate(seed.URL))
	two.checkValues("a second tab", map[string]string{field("general", "global_text"): "Hello, everyone",
		field("user", "user_note"): "my note", field("tab", "tab_data"): "", field("user", "username"): "Ann"})
	if got := two.text(greeting); got != "Ann" {
		t.Errorf("a second tab's greeting names %q, want Ann", got)
	}

	dark := `getComputedStyle(document.documentElement).colorScheme === 'dark'`
	one.do(chromedp.Click(field("user", "dark_mode")))
	one.waitSaved("user", "dark_mode")
	two.waitFor("Dark Mode to reach the second tab", `document.querySelector('#input-user-dark_mode').checked && `+dark)
	one.clear("user", "username")
	one.do(chromedp.SendKeys(chromedp.CSS(field("user", "username")), "Bea"))
	one.waitSaved("user", "username")
	two.waitText(greeting, "Bea")

	seed.restart(t)
	one.do(chromedp.Reload())
	up(one).checkValues("the first tab after a restart", map[string]string{field("general", "global_text"): "Hello, everyone",
		field("user", "user_note"): "my note", field("tab", "tab_data"): "first tab", field("user", "username"): "Bea"})
	two.do(chromedp.Reload())
	up(two).checkValues("the second tab after a restart", map[string]string{field("tab", "tab_data"): ""})
	if !eval[bool](one, dark) || one.text(greeting) != "Bea" {
		t.Errorf("after a restart: dark %v, greeting %q; want dark and Bea", eval[bool](one, dark), one.text(greeting))
	}

	other := up(b.context().navigate(seed.URL))
	other.checkValues("another browser", map[string]string{field("general", "global_text"): "Hello, everyone",
		field("user", "user_note"): "", field("tab", "tab_data"): "", field("user", "username"): ""})
	if got := other.text(greeting); got != "Guest" || eval[bool](other, dark) {
		t.Errorf("another browser: greeting %q, dark %v; want Guest and light", got, eval[bool](other, dark))
	}
}
