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
			{Scope: "user", Key: "dark_mode", Label: "Dark Mode", Checkbox: true},
		},
		Entries: []views.Entry{
			{Key: "last_visited_page", JSON: `"/"`, Version: 10},
			{Key: "user_note", JSON: `"hello"`, Version: 4},
			{Key: "visits", JSON: `3`, Version: 9},
		},
	}
}

func TestUpdateCarriesTheScopesPartsNotItsControls(t *testing.T) {
	name := "Ada"
	var b strings.Builder
	err := views.ScopeUpdate(views.Update{Panel: userPanel(), NoFields: true, Name: &name, Message: "Saved"}).Render(context.Background(), &b)
	if err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{`Saved<hx-partial`, `id="visits-user"`, `id="entries-user"`, `Hello, Ada!`, `data-v="10"`} {
		if !strings.Contains(html, want) {
			t.Errorf("answer lacks %s:\n%s", want, html)
		}
	}
	if strings.Contains(html, `id="field-user-`) {
		t.Errorf("answer to a bound control redraws the controls:\n%s", html)
	}
}

// go test -bench . ./views: the cost of drawing an answer and a page.
func BenchmarkScopeUpdate(b *testing.B) {
	name := "Ada"
	u := views.Update{Panel: userPanel(), NoFields: true, Name: &name, Message: "Saved"}
	for b.Loop() {
		if err := views.ScopeUpdate(u).Render(context.Background(), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFullPage(b *testing.B) {
	user := userPanel()
	general := views.Panel{Scope: "general", Title: "General", Visits: "8", Version: 10,
		Fields:  []views.Field{{Scope: "general", Key: "global_text", Label: "Global Message"}},
		Entries: []views.Entry{{Key: "visits", JSON: "8", Version: 8}}}
	browser := views.Panel{Scope: "browser", Title: "Browser", Visits: "2", Version: 2,
		Fields:  []views.Field{{Scope: "browser", Key: "browser_note", Label: "Browser"}},
		Entries: []views.Entry{{Key: "visits", JSON: "2", Version: 2}}}
	p := views.Page{Title: "Home", Name: "Ada", NameVersion: 10, LiveURL: "/live",
		Boot:   views.Boot{Number: 1, Time: time.Unix(1_800_000_000, 0)},
		Nav:    []views.NavLink{{Path: "/", Label: "Home", Current: true}, {Path: "/settings", Label: "Settings"}},
		Panels: []views.Panel{general, user, browser, {Scope: "tab", Title: "Tab", Lazy: true}, {Scope: "client", Title: "Client", Lazy: true}}}
	for b.Loop() {
		if err := views.FullPage(p).Render(context.Background(), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
