package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// putGeneral sets a general key through the API.
func putGeneral(t *testing.T, s *server, key, value string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", s.URL+"/api/storage/general/"+key, strings.NewReader(value))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", key, err)
	}
	res.Body.Close()
	if res.StatusCode >= 300 {
		t.Fatalf("PUT %s: status %d", key, res.StatusCode)
	}
}

// With a general scope of 500 keys of 16 KiB, five tabs load, a change
// typed in one reaches the others, the inspector shows 50 keys at a time
// (the filter finds the last one and its whole value opens; "Show more"
// brings the next), a change to a key a tab does not show only moves its
// count, and axe-core still finds nothing.
func TestBrowserAFullScope(t *testing.T) {
	s := startServer(t)
	const keys = 500
	value := `"` + strings.Repeat("v", 16*1024-2) + `"`
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < keys; i += 8 {
				putGeneral(t, s, fmt.Sprintf("filler-%04d", i), value)
			}
		})
	}
	wg.Wait()

	b := newBrowser(t)
	var tabs []*tab
	var errs []func() []string
	for range 5 {
		tb := b.open(s.URL)
		errs = append(errs, tb.watchErrors())
		tabs = append(tabs, tb)
	}
	rows := func(tb *tab) int {
		return eval[int](tb, `document.querySelectorAll('#entries-general tr[data-key]').length`)
	}
	if n := rows(tabs[4]); n != 50 {
		t.Errorf("the inspector shows %d keys, want the first 50", n)
	}

	tabs[0].typeText("general", "global_text", "typed in one tab")
	for _, tb := range tabs[1:] {
		tb.waitValue(field("general", "global_text"), "typed in one tab")
	}

	// The filter finds the last key, and its whole value opens.
	two := tabs[1]
	count := two.text("#count-general")
	two.do(chromedp.SendKeys(chromedp.CSS("#filter-general"), "0499"))
	two.waitFor("the filter to find the last key", `document.querySelectorAll('#entries-general tr[data-key]').length === 1
		&& document.querySelector('#entries-general tr[data-key="filler-0499"]') !== null`)
	two.do(chromedp.Click(chromedp.CSS(`#entries-general tr[data-key="filler-0499"] summary`)))
	two.waitFor("its whole value to open", fmt.Sprintf(`document.querySelector('#entries-general tr[data-key="filler-0499"] code.full').textContent.length === %d`, len(value)))
	two.audit("a full scope, filtered, a long value open")

	// Cleared, the filter shows the first keys again; "Show more" the next.
	two.do(chromedp.Evaluate[chromedp.Void](`(() => { const f = document.querySelector('#filter-general'); f.value = ''; f.dispatchEvent(new Event('search')); })()`))
	two.waitFor("the first keys again", `document.querySelectorAll('#entries-general tr[data-key]').length === 50`)
	two.do(chromedp.Click(chromedp.CSS(`#entries-general .more button`)))
	two.waitFor("the next 50 keys", `document.querySelectorAll('#entries-general tr[data-key]').length === 100
		&& document.querySelector('#entries-general tr[data-key="filler-0097"]') !== null`)

	// A key after the rows a tab shows only moves its count; one among
	// them takes its place in order.
	three := tabs[2]
	putGeneral(t, s, "zzz-after-them-all", `"new"`)
	three.waitFor("the feed to show the new key", `document.querySelector('#activity li[data-key="zzz-after-them-all"]') !== null`)
	if got := three.text("#count-general"); got == count {
		t.Errorf("the count did not move: %s", got)
	}
	if rows(three) != 50 || eval[bool](three, `document.querySelector('#entries-general tr[data-key="zzz-after-them-all"]') !== null`) {
		t.Errorf("a key the tab does not show was added to its rows")
	}
	putGeneral(t, s, "aaa-before-them-all", `"new"`)
	three.waitFor("the new key in first place", `document.querySelector('#entries-general tbody tr').dataset.key === 'aaa-before-them-all'`)

	for i, report := range errs {
		for _, e := range report() {
			t.Errorf("tab %d: script error: %s", i+1, e)
		}
	}
}
