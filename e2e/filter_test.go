package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserFilterAgreesWithTheServer: a page whose inspector had a filter
// applied while keys were written places each pushed key itself (app.js);
// it must show exactly what the server sends a fresh page under that
// filter (store.Matches), over keys whose case folds awkwardly: a dotted
// capital I, a sharp s, a final sigma, a titlecase digraph, an emoji and a
// combining mark.
func TestBrowserFilterAgreesWithTheServer(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	page := b.open(s.URL)
	keys := []string{"İstanbul", "İsmir", "straße", "STRASSE", "ΣΊΣΥΦΟΣ", "ΚΌΣΜΟΣ", "σοφός", "party 🎉 time",
		"cafe\u0301", "ǅemal"}
	filters := []string{"is", "i̇s", "İS", "ος", "ΟΣ", "σ", "ss", "SS", "ß", "🎉", "e\u0301", "ǆ"}
	for _, filter := range filters {
		req, _ := http.NewRequest(http.MethodDelete, s.URL+"/api/storage/general", nil)
		if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("clear: %v %v", res, err)
		}
		page.waitFor("the cleared scope", `document.querySelectorAll('#entries-general tr[data-key]').length === 0`)
		page.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
			`(() => { const f = document.querySelector('#filter-general'); f.value = %q; f.dispatchEvent(new Event('search')); })()`, filter)))
		page.waitFor("the filter "+filter, fmt.Sprintf(`document.querySelector('#entries-general').dataset.q === %q`, filter))
		for _, key := range keys {
			req, _ := http.NewRequest(http.MethodPut, s.URL+"/api/storage/general/"+url.PathEscape(key), strings.NewReader(`1`))
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil || res.StatusCode >= 300 {
				t.Fatalf("PUT %q: %v %v", key, res, err)
			}
			res.Body.Close()
		}
		page.waitFor("every key's push", fmt.Sprintf(`document.querySelector('#count-general').textContent.includes('(%d keys)')`, len(keys)))
		shown := eval[[]string](page, `[...document.querySelectorAll('#entries-general tr[data-key]')].map(tr => tr.dataset.key)`)
		fresh := eval[string](page, fmt.Sprintf(`(() => {
			const x = new XMLHttpRequest();
			x.open('GET', '/scopes/general/entries?q=' + encodeURIComponent(%q), false);
			x.setRequestHeader('HX-Request', 'true');
			x.send();
			const doc = new DOMParser().parseFromString(x.responseText, 'text/html');
			return JSON.stringify([...doc.querySelectorAll('tr[data-key]')].map(tr => tr.dataset.key));
		})()`, filter))
		var want []string
		if err := json.Unmarshal([]byte(fresh), &want); err != nil {
			t.Fatalf("the server's rows: %v", err)
		}
		slices.Sort(shown)
		slices.Sort(want)
		if !slices.Equal(shown, want) {
			t.Errorf("under the filter %q the page placed %q, the server sends a fresh page %q", filter, shown, want)
		}
	}
}
