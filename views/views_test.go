package views_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/storagescopes/app/views"
)

// A user scope as the page shows it after a little use.
func userPanel() views.Panel {
	return views.Panel{
		Scope: "user", Title: "User", Lifetime: "This browser.", Visits: "3", Version: 10,
		Fields: []views.Field{
			{Scope: "user", Key: "username", Label: "Your name", Text: "Ada"},
			{Scope: "user", Key: "user_note", Label: "Your Persistent Note", Text: "hello"},
			{Scope: "user", Key: "dark_mode", Label: "Dark Mode", Kind: "checkbox"},
		},
		List: views.List{Scope: "user", Keys: 3, Version: 10, Rows: []views.Entry{
			{Key: "last_visited_page", JSON: `"/"`, Version: 10},
			{Key: "user_note", JSON: `"hello"`, Version: 4},
			{Key: "visits", JSON: `3`, Version: 9},
		}},
	}
}

// noteChange is the answer to a bound control that set the user's name.
func noteChange() views.Change {
	name := "Ada"
	return views.Change{Scope: "user", Version: 11, Keys: 4, KeysAt: 11, Name: &name, Message: "Saved", OriginOnly: true,
		Fields:   []views.Field{{Scope: "user", Key: "username", Label: "Your name", Text: "Ada"}},
		Row:      &views.Entry{Key: "username", JSON: `"Ada"`, Version: 11},
		Activity: &views.Activity{Scope: "user", Key: "username", Text: "Ada", Version: 11}}
}

func TestAnswerCarriesWhatTheChangeTouchedNotItsControl(t *testing.T) {
	var b strings.Builder
	if err := views.ChangeAnswer(noteChange()).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{`Saved`, `hx-target="#origin-of-user-username"`, `hx-swap="upsert"`, `data-key="username"`,
		`id="count-user"`, `(4 keys)`, `Hello, Ada!`, `data-v="11"`} {
		if !strings.Contains(html, want) {
			t.Errorf("answer lacks %s:\n%s", want, html)
		}
	}
	for _, unwanted := range []string{`id="field-user-`, `id="visits-user"`, `last_visited_page`} {
		if strings.Contains(html, unwanted) {
			t.Errorf("answer holds %s, which the change did not touch:\n%s", unwanted, html)
		}
	}
}

// A panel made by NewPanel draws its unchanging parts in advance; the page
// must look exactly as if they were drawn on each render.
func TestPanelsDrawnInAdvanceLookTheSame(t *testing.T) {
	const lifetime = "This browser & <its> cookie."
	made, err := views.NewPanel("user", "User", lifetime)
	if err != nil {
		t.Fatal(err)
	}
	plain := views.Panel{Scope: "user", Title: "User", Lifetime: lifetime}
	draw := func(p views.Panel, lazy bool) string {
		u := userPanel()
		p.Fields, p.List, p.Visits, p.Version, p.Lazy = u.Fields, u.List, u.Visits, u.Version, lazy
		var b strings.Builder
		if err := views.ScopePanel(p).Render(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	for _, tc := range []struct {
		lazy  bool
		parts []string
	}{
		{false, []string{`id="panel-user"`, "This browser &amp; &lt;its&gt; cookie.", `hx-confirm="Delete every key of the User scope?"`, `value="Ada"`}},
		{true, []string{`id="panel-user"`, "This browser &amp; &lt;its&gt; cookie.", `hx-post="/scopes/user/visit"`, "Loading User storage"}},
	} {
		got, want := draw(made, tc.lazy), draw(plain, tc.lazy)
		if got != want {
			t.Errorf("lazy %v: drawn in advance\n%s\nwant\n%s", tc.lazy, got, want)
		}
		for _, part := range tc.parts {
			if !strings.Contains(got, part) {
				t.Errorf("lazy %v: panel lacks %s:\n%s", tc.lazy, part, got)
			}
		}
	}
}

// go test -bench . ./views: the cost of drawing an answer and a page.
func BenchmarkChangeAnswer(b *testing.B) {
	c := noteChange()
	for b.Loop() {
		if err := views.ChangeAnswer(c).Render(context.Background(), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFullPage(b *testing.B) {
	// As the app draws them: each panel made once by NewPanel.
	head := func(scope, title string) views.Panel {
		p, err := views.NewPanel(scope, title, "Kept in SQLite: survives restarts.")
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	u := userPanel()
	user := head("user", "User")
	user.Fields, user.List, user.Visits, user.Version = u.Fields, u.List, u.Visits, u.Version
	general := head("general", "General")
	general.Visits, general.Version = "8", 10
	general.Fields = []views.Field{{Scope: "general", Key: "global_text", Label: "Global Message"}}
	general.List = views.List{Scope: "general", Keys: 1, Version: 10, Rows: []views.Entry{{Key: "visits", JSON: "8", Version: 8}}}
	browser := head("browser", "Browser")
	browser.Visits, browser.Version = "2", 2
	browser.Fields = []views.Field{{Scope: "browser", Key: "browser_note", Label: "Browser"}}
	browser.List = views.List{Scope: "browser", Keys: 1, Version: 2, Rows: []views.Entry{{Key: "visits", JSON: "2", Version: 2}}}
	tab, client := head("tab", "Tab"), head("client", "Client")
	tab.Lazy, client.Lazy = true, true
	p := views.Page{Title: "Home", Name: "Ada", NameVersion: 10, LiveURL: "/live",
		Boot:   views.Boot{Number: 1, Time: time.Unix(1_800_000_000, 0)},
		Nav:    []views.NavLink{{Path: "/", Label: "Home", Current: true}, {Path: "/settings", Label: "Settings"}},
		Panels: []views.Panel{general, user, browser, tab, client}}
	for b.Loop() {
		if err := views.FullPage(p).Render(context.Background(), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
