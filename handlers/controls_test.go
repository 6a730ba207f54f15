package handlers_test

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// The slider, the select and the text area: each stores what it shows, in
// its scope, and refuses what it cannot hold, changing nothing.
func TestMoreBoundControls(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	doc := b.View("/")
	page := b.Page("/")
	if v, _ := page.Find("#input-user-font_size").Attr("value"); v != "16" {
		t.Errorf("Font size starts at %q, want 16", v)
	}
	for _, label := range []string{"Font size", "Shared notes"} {
		inputValue(t, page, label) // fails without the label or its control
	}
	if doc.Find(`label[for="input-tab-tab_color"]`).Text() != "Tab color" || doc.Find("#input-tab-tab_color option").Length() < 3 {
		t.Errorf("no Tab color select in the tab panel")
	}
	for _, c := range []struct {
		scope, key, value string
		status            int
		message, stored   string
	}{
		{"user", "font_size", "20", 200, "Saved", "20"},
		{"tab", "tab_color", "blue", 200, "Saved", `"blue"`},
		{"general", "shared_notes", "line one\nline two", 200, "Saved", `"line one\nline two"`},
		{"user", "font_size", "25", 400, "Font size must be a whole number from 12 to 24", "20"},
		{"user", "font_size", "big", 400, "from 12 to 24", "20"},
		{"tab", "tab_color", "chartreuse", 400, "Tab color must be one of none, red, amber, green, blue, purple", `"blue"`},
		{"general", "shared_notes", strings.Repeat("x", 17<<10), 413, "larger than", `"line one\nline two"`},
	} {
		res := b.Type(c.scope, c.key, c.value)
		if res.Status != c.status || !strings.Contains(res.Body, c.message) {
			t.Errorf("%s/%s = %.20q: %d %.80q, want %d %q", c.scope, c.key, c.value, res.Status, res.Body, c.status, c.message)
		}
		if got := b.API("GET", c.scope+"/"+c.key, ""); !strings.Contains(got.Body, `"value":`+c.stored) {
			t.Errorf("%s/%s after %.20q: %s, want %s", c.scope, c.key, c.value, got.Body, c.stored)
		}
	}
	// The server draws them as stored: no flash of the default on load.
	page = b.Page("/")
	if v, _ := page.Find("#input-user-font_size").Attr("value"); v != "20" {
		t.Errorf("Font size drawn as %q, want 20", v)
	}
	if got := page.Find("#input-general-shared_notes").Text(); got != "line one\nline two" {
		t.Errorf("Shared notes drawn as %q", got)
	}
	if sel := b.TabPanel().Find(`#input-tab-tab_color option[selected]`); sel.AttrOr("value", "") != "blue" {
		t.Errorf("Tab color drawn as %q, want blue", sel.AttrOr("value", ""))
	}
	// The color is this tab's alone.
	if sel := tabOf(b).TabPanel().Find(`#input-tab-tab_color option[selected]`); sel.AttrOr("value", "x") != "" {
		t.Errorf("another tab's color is %q, want none", sel.AttrOr("value", "x"))
	}
}

// The font size follows live in the browser's other tabs, like dark mode.
func TestFontSizeReachesTheOtherTabs(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.View("/")
	other := tabOf(b)
	other.View("/")
	p := other.Live()
	p.Joined()
	b.Type("user", "font_size", "22")
	if m := p.Expect(`hx-target="#field-user-font_size"`); !strings.Contains(m, `value="22"`) {
		t.Errorf("the push does not carry the font size: %.300s", m)
	}
}

// A long value is shown cut, with its size, and whole when its row is
// opened (fetched then: a page is sized by what it shows); a key may break
// only after "_", never inside a word.
func TestTheInspectorCutsLongValues(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.View("/")
	note := strings.Repeat("word ", 1800) // 9,000 characters
	b.Type("user", "user_note", note)
	b.API("PUT", "user/structured_value", `{"list":[1,2,3],"text":"`+strings.Repeat("y", 200)+`"}`)
	doc := b.Page("/")
	row := doc.Find(`#entries-user tr[data-key="user_note"]`)
	preview := row.Find("summary code").Text()
	if n := len([]rune(preview)); n > 125 || !strings.HasSuffix(preview, "…") {
		t.Errorf("the preview is %d characters: %.60q", n, preview)
	}
	if got := strings.TrimSpace(row.Find(".size").Text()); got != "8.8 KiB" {
		t.Errorf("size = %q, want 8.8 KiB", got)
	}
	if strings.Contains(doc.Text(), note) {
		t.Errorf("the page holds the long value whole")
	}
	whole := func(row *goquery.Selection) string {
		t.Helper()
		url, ok := row.Find("details").Attr("hx-get")
		if !ok {
			t.Fatalf("a long value's row fetches nothing when opened")
		}
		res := b.Do("GET", url, nil, map[string]string{"HX-Request": "true"})
		if res.Status != 200 {
			t.Fatalf("GET %s: %d %s", url, res.Status, res.Body)
		}
		return mustParse(t, res.Body).Text()
	}
	if got := whole(row); got != `"`+note+`"` {
		t.Errorf("the whole value is %d characters, want %d", len(got), len(note)+2)
	}
	if got := whole(doc.Find(`#entries-user tr[data-key="structured_value"]`)); !strings.Contains(got, "\n  \"list\": [\n    1,") {
		t.Errorf("a structured value is not indented: %.80q", got)
	}
	key, _ := doc.Find(`#entries-user tr[data-key="last_visited_page"] th`).Html()
	if strings.Count(key, "<wbr/>") != 3 || !strings.Contains(key, "last_<wbr/>visited_<wbr/>page") {
		t.Errorf("the key may break only after its underscores: %s", key)
	}
}
