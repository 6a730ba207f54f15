package handlers_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// tabOf is another tab of b's browser (same cookie jar, its own tab id).
func tabOf(b *browser) *browser {
	t := *b
	t.tab = newUUID()
	return &t
}

// twoBrowsers starts the app with three tabs open in two browsers: alice's
// Tab 1 and Tab 2, and bob's, each page loaded.
func twoBrowsers(t *testing.T) (a *app, alice, aliceTab2, bob *browser) {
	t.Helper()
	a = MustStart(t)
	alice = a.NewBrowser(t)
	alice.View("/")
	aliceTab2 = tabOf(alice)
	aliceTab2.View("/")
	bob = a.NewBrowser(t)
	bob.View("/")
	return a, alice, aliceTab2, bob
}

// attr is the attribute of the first element with data-testid id.
func attr(doc *goquery.Document, id, name string) string {
	v, _ := doc.Find(`[data-testid="` + id + `"]`).First().Attr(name)
	return v
}

// Tabs are named Tab 1, Tab 2, … per browser, in the order they appear; a
// reload keeps the name; a duplicated tab takes the next; another browser
// counts its own.
func TestTabsAreNamedPerBrowserInOrder(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	second := tabOf(b)
	for _, c := range []struct {
		b    *browser
		copy string
		want string
	}{
		{b, "", "Tab 1"}, {second, "", "Tab 2"}, {b, "", "Tab 1"}, // a reload
		{tabOf(b), b.tab, "Tab 3"},     // a duplicate of Tab 1
		{a.NewBrowser(t), "", "Tab 1"}, // another browser
	} {
		c.b.Page("/")
		h := map[string]string{}
		if c.copy != "" {
			h["X-Tab-Copy-From"] = c.copy
		}
		res := c.b.Do("POST", "/scopes/tab/visit", nil, h)
		if got := testID(mustParse(t, res.Body), "tab-name"); got != c.want {
			t.Errorf("tab-name = %q, want %q", got, c.want)
		}
	}
	// The title leads with it (the page's script sets it from tab-name), and
	// the page says which page it is.
	if title, _ := b.Page("/settings").Find("title").Attr("data-page"); title != "Settings" {
		t.Errorf("title's page = %q, want Settings", title)
	}
}

// Who changed a value, from each point of view: the tab that did, another
// tab of its browser (by name), another browser (nothing more), the API.
func TestOriginsFromEachPointOfView(t *testing.T) {
	_, alice, aliceTab2, bob := twoBrowsers(t)

	if res := alice.Type("general", "global_text", "from alice's first tab"); res.Status != 200 {
		t.Fatalf("type: %d %s", res.Status, res.Body)
	}
	originIn := func(doc *goquery.Document) (kind, tabName, text string) {
		sel := doc.Find(`.field [data-testid="origin-general-global_text"]`).First()
		kind, _ = sel.Attr("data-origin")
		tabName, _ = sel.Attr("data-tab-name")
		return kind, tabName, strings.Join(strings.Fields(sel.Text()), " ")
	}
	for _, c := range []struct {
		who                 string
		b                   *browser
		kind, tabName, text string
	}{
		// A page's first load names no tab: the server says "Tab 1", and
		// the page's script, which knows it is Tab 1, says "by this tab".
		{"alice's first tab", alice, "other-tab", "Tab 1", "by Tab 1, just now"},
		{"alice's second tab", aliceTab2, "other-tab", "Tab 1", "by Tab 1, just now"},
		{"bob", bob, "other-browser", "", "by another browser, just now"},
	} {
		kind, tabName, text := originIn(c.b.Page("/"))
		if kind != c.kind || tabName != c.tabName || text != c.text {
			t.Errorf("%s sees %q %q %q, want %q %q %q", c.who, kind, tabName, text, c.kind, c.tabName, c.text)
		}
	}
	// Where the server knows the tab, it says so itself.
	for _, c := range []struct {
		who     string
		b       *browser
		origin  string
		tabName string
	}{{"alice's first tab", alice, "this-tab", "Tab 1"}, {"alice's second tab", aliceTab2, "other-tab", "Tab 1"}, {"bob", bob, "other-browser", ""}} {
		var e struct {
			Origin  string
			TabName string `json:"tab_name"`
		}
		res := c.b.Do("GET", "/api/storage/general/global_text", nil, map[string]string{"HX-Request": ""})
		json.Unmarshal([]byte(res.Body), &e)
		if e.Origin != c.origin || e.TabName != c.tabName {
			t.Errorf("the API tells %s %q %q, want %q %q", c.who, e.Origin, e.TabName, c.origin, c.tabName)
		}
	}
	// Nothing tells another browser who it was.
	bobsView := bob.Page("/")
	html, _ := bobsView.Html()
	for _, secret := range []string{alice.tab, aliceTab2.tab} {
		if strings.Contains(html, secret) {
			t.Errorf("bob's page holds alice's tab id %s", secret)
		}
	}
	// Through the API.
	bob.API("PUT", "general/global_text", `"from curl"`)
	if kind, _, text := originIn(alice.Page("/")); kind != "api" || text != "through the API, just now" {
		t.Errorf("after an API write alice sees %q %q, want api", kind, text)
	}
	// The time is the change's, in RFC 3339.
	at, _ := alice.Page("/").Find(`.field [data-testid="origin-general-global_text"] time`).Attr("datetime")
	if when, err := time.Parse(time.RFC3339Nano, at); err != nil || time.Since(when) > time.Minute {
		t.Errorf("the origin's time is %q (%v), want a moment ago", at, err)
	}
}

// Each panel says who shares its scope now, and follows pages opening and
// closing.
func TestPresenceFollowsLivePages(t *testing.T) {
	a, alice, aliceTab2, bob := twoBrowsers(t)
	p1, p2, pb := alice.Live(), aliceTab2.Live(), bob.Live()
	// Three tabs in two browsers; alice's browser has Tab 1 and Tab 2.
	p2.Expect(`data-tabs="3" data-browsers="2"`)
	if m := p2.Expect(`Tab 1, Tab 2 (this one)`); !strings.Contains(m, `id="presence-user"`) || !strings.Contains(m, `id="presence-browser"`) {
		t.Errorf("the user and browser lines were not pushed together: %s", m)
	}
	pb.Expect(`data-tabs="3" data-browsers="2"`)
	p1.Expect(`Tab 1 (this one), Tab 2`)
	// A page loaded now counts them too.
	doc := a.NewBrowser(t).Page("/")
	if got := attr(doc, "presence-general", "data-tabs"); got != "3" {
		t.Errorf("a new page's general presence counts %s tabs, want 3", got)
	}
	// A tab closes: the others' lines say so.
	p2.conn.CloseNow()
	p1.Expect(`1 tab of this browser open now: Tab 1 (this one)<`)
	pb.Expect(`data-tabs="2" data-browsers="2"`)
}

// The activity feed reaches exactly whom the scope reaches: a tab's own
// changes no other tab, a browser's no other browser, the general scope
// everyone; deletes and clears too.
func TestActivityReachesWhomTheScopeReaches(t *testing.T) {
	a, alice, aliceTab2, bob := twoBrowsers(t)
	p1, p2, pb := alice.Live(), aliceTab2.Live(), bob.Live()
	for _, p := range []*page{p1, p2, pb} {
		p.Joined()
	}
	alice.typeAs(p1, "tab", "tab_data", "tab one's")
	alice.typeAs(p1, "user", "user_note", "alice's note")
	h := p1.header()
	h["Content-Type"] = "application/x-www-form-urlencoded"
	alice.Do("DELETE", "/scopes/user/entries/user_note", nil, h)
	alice.typeAs(p1, "general", "global_text", "for everyone")

	item := func(scope, key, what string) string {
		return fmt.Sprintf(`data-scope="%s" data-key="%s"`, scope, key) + "|" + what
	}
	has := func(m, spec string) bool {
		attrs, what, _ := strings.Cut(spec, "|")
		return strings.Contains(m, attrs) && strings.Contains(m, what)
	}
	// Tab 2 sees alice's user changes (and the delete) and the general one,
	// by Tab 1; never Tab 1's tab scope.
	var seen []string
	for !has(strings.Join(seen, ""), item("general", "global_text", "for everyone")) {
		seen = append(seen, p2.Expect(`hx-target="#activity"`))
	}
	all := strings.Join(seen, "")
	for _, want := range []string{item("user", "user_note", "alice&#39;s note"), item("user", "user_note", "deleted")} {
		if !has(all, want) {
			t.Errorf("tab 2's feed lacks %s:\n%s", want, all)
		}
	}
	if strings.Contains(all, `data-scope="tab"`) {
		t.Errorf("tab 2's feed holds tab 1's tab scope:\n%s", all)
	}
	if !strings.Contains(all, `data-origin="other-tab" data-tab-name="Tab 1"`) {
		t.Errorf("tab 2's feed does not say Tab 1 made the changes:\n%s", all)
	}
	// Bob sees the general change, by another browser, and nothing of
	// alice's own scopes.
	m := pb.Expect(`for everyone`)
	if !strings.Contains(m, `data-origin="other-browser"`) || strings.Contains(m, "alice") {
		t.Errorf("bob's push: %s", m)
	}
	a.NewBrowser(t).Type("general", "global_text", "marker")
	pb.ExpectNoneBefore("alice&#39;s note", "marker")
}

// Two tabs edit one value from the same version: the second is refused
// with who changed it and their value, and saves only when it says so.
func TestAChangeBasedOnAnOldValueIsNotLost(t *testing.T) {
	a := MustStart(t)
	alice := a.NewBrowser(t)
	alice.View("/")
	tab2 := tabOf(alice)
	tab2.View("/")
	typeFrom := func(b *browser, text, base string) response {
		return b.Do("POST", "/scopes/general/fields/global_text", strings.NewReader(url.Values{"value": {text}}.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "If-Match": base})
	}
	first := typeFrom(alice, "tab 1's text", `"0"`) // both began from no value
	if first.Status != 200 || first.Header.Get("ETag") == "" {
		t.Fatalf("tab 1 saves: %d %s (ETag %q)", first.Status, first.Body, first.Header.Get("ETag"))
	}
	res := typeFrom(tab2, "tab 2's text", `"0"`)
	if res.Status != 412 || !strings.Contains(res.Body, "Changed by Tab 1 while you typed") {
		t.Fatalf("tab 2's stale save: %d %s, want 412 naming Tab 1", res.Status, res.Body)
	}
	doc := mustParse(t, res.Body)
	theirs, _ := doc.Find("[data-take-theirs]").Attr("data-value")
	version, _ := doc.Find("[data-keep-mine]").Attr("data-version")
	if theirs != "tab 1's text" || doc.Find("button:contains('Take theirs')").Length() != 1 || doc.Find("button:contains('Keep mine')").Length() != 1 {
		t.Errorf("the refusal offers %q: %s", theirs, res.Body)
	}
	if got := alice.API("GET", "general/global_text", ""); !strings.Contains(got.Body, `"tab 1's text"`) {
		t.Errorf("the refused save changed the value: %s", got.Body)
	}
	// Keep mine: saved over theirs, knowingly.
	if res := typeFrom(tab2, "tab 2's text", `"`+version+`"`); res.Status != 200 {
		t.Errorf("keep mine: %d %s", res.Status, res.Body)
	}
	if got := alice.API("GET", "general/global_text", ""); !strings.Contains(got.Body, `"tab 2's text"`) {
		t.Errorf("after keep mine: %s", got.Body)
	}
}

// The API's writes can name the version they are based on.
func TestAPIConditionalWrites(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	put := func(value, ifMatch string) response {
		return b.Do("PUT", "/api/storage/user/k", strings.NewReader(value),
			map[string]string{"Content-Type": "application/json", "HX-Request": "", "If-Match": ifMatch})
	}
	first := put(`1`, "")
	tag := first.Header.Get("ETag")
	var e struct {
		Version   int64
		Origin    string
		ChangedAt string `json:"changed_at"`
	}
	json.Unmarshal([]byte(first.Body), &e)
	if tag != fmt.Sprintf(`"%d"`, e.Version) || e.Origin != "api" || e.ChangedAt == "" {
		t.Fatalf("PUT answered ETag %q and %s", tag, first.Body)
	}
	if got := b.API("GET", "user/k", ""); got.Header.Get("ETag") != tag {
		t.Errorf("GET's ETag %q, want %q", got.Header.Get("ETag"), tag)
	}
	second := put(`2`, tag)
	if second.Status != 200 {
		t.Fatalf("PUT with the current ETag: %d %s", second.Status, second.Body)
	}
	stale := put(`3`, tag)
	if stale.Status != 412 || !strings.Contains(stale.Body, `"current":{"key":"k","value":2`) {
		t.Errorf("PUT with an old ETag: %d %s, want 412 with the current value", stale.Status, stale.Body)
	}
	del := b.Do("DELETE", "/api/storage/user/k", nil, map[string]string{"HX-Request": "", "If-Match": tag})
	if del.Status != 412 {
		t.Errorf("DELETE with an old ETag: %d %s, want 412", del.Status, del.Body)
	}
	if got := b.API("GET", "user/k", ""); !strings.Contains(got.Body, `"value":2`) {
		t.Errorf("after the refusals: %s", got.Body)
	}
	if bad := put(`4`, `soon`); bad.Status != 400 || !strings.Contains(bad.Body, "entity tags") {
		t.Errorf("If-Match that is no entity tag: %d %s, want 400", bad.Status, bad.Body)
	}
}

// Conditional writes as RFC 9110 has them: If-Match: * needs the key,
// If-None-Match: * needs it absent, a list of tags is honoured, a weak tag
// never matches If-Match (strong comparison), a malformed header is a 400,
// a DELETE of a missing key is a 404 whatever it names, and a PUT answers
// 201 when it made the key, 200 when it replaced it. Each refusal changes
// nothing.
func TestAPIPreconditionsAsRFC9110Has(t *testing.T) {
	a := MustStart(t)
	for _, tc := range []struct {
		name    string
		exists  bool
		method  string
		headers map[string]string // "{v}" stands for the key's version
		want    int
	}{
		{"PUT, no condition, absent", false, "PUT", nil, 201},
		{"PUT, no condition, present", true, "PUT", nil, 200},
		{"PUT If-Match: *, absent", false, "PUT", map[string]string{"If-Match": "*"}, 412},
		{"PUT If-Match: *, present", true, "PUT", map[string]string{"If-Match": "*"}, 200},
		{"PUT If-None-Match: *, absent", false, "PUT", map[string]string{"If-None-Match": "*"}, 201},
		{"PUT If-None-Match: *, present", true, "PUT", map[string]string{"If-None-Match": "*"}, 412},
		{"PUT If-Match the version", true, "PUT", map[string]string{"If-Match": `"{v}"`}, 200},
		{"PUT If-Match another version", true, "PUT", map[string]string{"If-Match": `"999"`}, 412},
		{"PUT If-Match a version, absent", false, "PUT", map[string]string{"If-Match": `"7"`}, 412},
		{"PUT If-Match a list holding the version", true, "PUT", map[string]string{"If-Match": `"998", "{v}"`}, 200},
		{"PUT If-Match a list without it", true, "PUT", map[string]string{"If-Match": `"998", "999"`}, 412},
		{"PUT If-Match a weak tag of the version", true, "PUT", map[string]string{"If-Match": `W/"{v}"`}, 412},
		{"PUT If-Match a tag no version has", true, "PUT", map[string]string{"If-Match": `"soon"`}, 412},
		{`PUT If-Match "0" (this API's: absent), absent`, false, "PUT", map[string]string{"If-Match": `"0"`}, 201},
		{`PUT If-Match "0", present`, true, "PUT", map[string]string{"If-Match": `"0"`}, 412},
		{"PUT If-None-Match the version", true, "PUT", map[string]string{"If-None-Match": `"{v}"`}, 412},
		{"PUT If-None-Match a weak tag of the version", true, "PUT", map[string]string{"If-None-Match": `W/"{v}"`}, 412},
		{"PUT If-None-Match another version", true, "PUT", map[string]string{"If-None-Match": `"999"`}, 200},
		{"PUT If-None-Match a version, absent", false, "PUT", map[string]string{"If-None-Match": `"7"`}, 201},
		{"PUT If-Match and If-None-Match: both count", true, "PUT", map[string]string{"If-Match": `"{v}"`, "If-None-Match": "*"}, 412},
		{"PUT If-Match with a leading zero", true, "PUT", map[string]string{"If-Match": `"0{v}"`}, 412},
		{"PUT If-Match malformed", true, "PUT", map[string]string{"If-Match": `{v}`}, 400},
		{"PUT If-Match unclosed", true, "PUT", map[string]string{"If-Match": `"{v}`}, 400},
		{"PUT If-None-Match malformed", false, "PUT", map[string]string{"If-None-Match": `"a", b`}, 400},
		{"DELETE, no condition, present", true, "DELETE", nil, 204},
		{"DELETE, no condition, absent", false, "DELETE", nil, 404},
		{"DELETE If-Match: *, present", true, "DELETE", map[string]string{"If-Match": "*"}, 204},
		{"DELETE If-Match: *, absent", false, "DELETE", map[string]string{"If-Match": "*"}, 404},
		{"DELETE If-Match the version", true, "DELETE", map[string]string{"If-Match": `"{v}"`}, 204},
		{"DELETE If-Match another version", true, "DELETE", map[string]string{"If-Match": `"999"`}, 412},
		{"DELETE If-Match a weak tag", true, "DELETE", map[string]string{"If-Match": `W/"{v}"`}, 412},
		{"DELETE If-Match a list holding it", true, "DELETE", map[string]string{"If-Match": `"1", "{v}"`}, 204},
		{"DELETE If-None-Match: *, present", true, "DELETE", map[string]string{"If-None-Match": "*"}, 412},
		{"DELETE If-None-Match: *, absent", false, "DELETE", map[string]string{"If-None-Match": "*"}, 404},
		{"DELETE If-Match a version, absent", false, "DELETE", map[string]string{"If-Match": `"7"`}, 404},
		{"DELETE If-Match malformed", true, "DELETE", map[string]string{"If-Match": `nope`}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := a.NewBrowser(t)
			version := ""
			if tc.exists {
				res := b.API("PUT", "user/k", `"before"`)
				version = strings.Trim(res.Header.Get("ETag"), `"`)
			}
			h := map[string]string{"Content-Type": "application/json", "HX-Request": ""}
			for k, v := range tc.headers {
				h[k] = strings.ReplaceAll(v, "{v}", version)
			}
			var body io.Reader
			if tc.method == "PUT" {
				body = strings.NewReader(`"after"`)
			}
			res := b.Do(tc.method, "/api/storage/user/k", body, h)
			if res.Status != tc.want {
				t.Fatalf("%d %s, want %d", res.Status, res.Body, tc.want)
			}
			got := b.API("GET", "user/k", "")
			switch {
			case res.Status >= 400 && tc.exists && !strings.Contains(got.Body, `"value":"before"`):
				t.Errorf("a refused write changed the key: %s", got.Body)
			case res.Status >= 400 && !tc.exists && got.Status != 404:
				t.Errorf("a refused write made the key: %s", got.Body)
			case res.Status == 412 && tc.exists && !strings.Contains(res.Body, `"current":{"key":"k","value":"before"`):
				t.Errorf("a 412 without the key as it is: %s", res.Body)
			}
		})
	}
}
