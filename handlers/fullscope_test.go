package handlers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/storagescopes/app/store"
)

// fillScope writes n keys of size bytes (JSON) into owner o, through the
// store, as many API calls would.
func fillScope(tb testing.TB, a *app, o store.Owner, n, size int) {
	tb.Helper()
	value := []byte(`"` + strings.Repeat("x", size-2) + `"`)
	var muts []store.Mutation
	flush := func() {
		if _, err := a.Store.Apply(context.Background(), store.Origin{API: true}, muts...); err != nil {
			tb.Fatalf("fill: %v", err)
		}
		muts = muts[:0]
	}
	for i := range n {
		muts = append(muts, store.Mutation{Owner: o, Key: fmt.Sprintf("filler-%04d", i), Value: value})
		if len(muts) == store.MaxMutations {
			flush()
		}
	}
	if len(muts) > 0 {
		flush()
	}
}

// With the general scope at its limits (1,000 keys of 16 KiB: 16 MB), a
// page, a live page's join and one key's change cost what they show: the
// change reaches another browser's page in at most 2 KiB, and the page and
// the join stay under 200 KB.
func TestAFullScopeCostsWhatIsShown(t *testing.T) {
	a := MustStart(t)
	limits := store.DefaultLimits
	fillScope(t, a, store.GeneralOwner, limits.KeysPerOwner-1, limits.ValueBytes) // and global_text
	viewer := a.NewBrowser(t)
	page := viewer.Do("GET", "/", nil, map[string]string{"HX-Request": "", "X-Tab-ID": ""})
	if page.Status != 200 || len(page.Body) > 200_000 {
		t.Errorf("page: %d, %d bytes; want 200 and at most 200 KB", page.Status, len(page.Body))
	}
	if n := mustParse(t, page.Body).Find(`#entries-general tr[data-key]`).Length(); n != 50 {
		t.Errorf("the page's inspector shows %d keys, want the first 50", n)
	}
	p := viewer.Live()
	join := p.Next()
	if len(join) > 200_000 || !strings.Contains(join, `id="entries-general"`) {
		t.Errorf("join: %d bytes (want at most 200 KB) holding the general inspector: %v", len(join), strings.Contains(join, `id="entries-general"`))
	}

	writer := a.NewBrowser(t)
	writer.Page("/")
	writer.Type("general", "global_text", "one short change")
	push := p.Expect("one short change")
	if len(push) > 2048 {
		t.Errorf("one key's change reached the other page in %d bytes, want at most 2 KiB", len(push))
	}
	for _, want := range []string{`hx-target="#field-general-global_text"`, `data-key="global_text"`, `id="count-general"`, `(1000 keys)`, `data-key="global_text" data-origin="other-browser"`} {
		if !strings.Contains(push, want) {
			t.Errorf("the push lacks %s: %s", want, push)
		}
	}

	// A delete removes one row, and a clear of the whole scope is one small
	// message too.
	if res := writer.API("DELETE", "general/filler-0000", ""); res.Status != 204 && res.Status != 200 {
		t.Fatalf("DELETE: %d %s", res.Status, res.Body)
	}
	if del := p.Expect(`data-key="filler-0000"`); len(del) > 2048 || !strings.Contains(del, "data-deleted") || !strings.Contains(del, "(999 keys)") {
		t.Errorf("a delete reached the other page in %d bytes (want at most 2 KiB, a deleted row and 999 keys): %s", len(del), del)
	}
	if res := writer.API("DELETE", "general", ""); res.Status != 204 && res.Status != 200 {
		t.Fatalf("clear: %d %s", res.Status, res.Body)
	}
	if clear := p.Expect("data-cleared"); len(clear) > 2048 || !strings.Contains(clear, "(0 keys)") {
		t.Errorf("a clear reached the other page in %d bytes (want at most 2 KiB, and 0 keys): %s", len(clear), clear)
	}
}

// A page that reconnects names what its inspectors show, and its join draws
// just that: the keys its filter finds, or as many rows as it had shown.
func TestLiveJoinDrawsWhatThePageShows(t *testing.T) {
	a := MustStart(t)
	fillScope(t, a, store.GeneralOwner, 200, 100)
	b := a.NewBrowser(t)
	b.Page("/")
	rows := func(join string) []string {
		var keys []string
		doc := mustParse(t, join)
		doc.Find(`#entries-general tr[data-key]`).Each(func(_ int, r *goquery.Selection) {
			keys = append(keys, r.AttrOr("data-key", ""))
		})
		return keys
	}
	join := func(p *page) string { return p.Next() + p.Next() } // the general scope's part, then the page's own
	if got := rows(join(b.LiveShowing("q-general=0199"))); len(got) != 1 || got[0] != "filler-0199" {
		t.Errorf("a page filtering on 0199 joined with rows %v", got)
	}
	if got := rows(join(b.LiveShowing("n-general=120"))); len(got) != 120 || got[119] != "filler-0119" {
		t.Errorf("a page showing 120 rows joined with %d", len(got))
	}
	if got := rows(join(b.Live())); len(got) != 50 {
		t.Errorf("a page showing the first rows joined with %d", len(got))
	}
}
