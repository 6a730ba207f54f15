package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/storagescopes/app/handlers"
	"github.com/storagescopes/app/store"
)

func TestPageShowsLabelsAndGreetsByName(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	doc := b.Page("/")
	if got := testID(doc, "greeting"); got != "Hello, Guest!" {
		t.Errorf("greeting = %q, want %q", got, "Hello, Guest!")
	}
	for _, label := range []string{"Your name", "Global Message", "Your Persistent Note", "Dark Mode", "Browser"} {
		inputValue(t, doc, label) // fails the test if the label or its input is missing
	}
	for _, scope := range []string{"general", "user", "browser", "tab"} {
		if doc.Find(`[data-testid="panel-`+scope+`"]`).Length() != 1 {
			t.Errorf("no panel-%s", scope)
		}
	}
	// The tab panel loads itself, with the tab's input.
	inputValue(t, b.TabPanel(), "Tab-Specific Data")

	if res := b.Type("user", "username", "Ada"); res.Status != 200 {
		t.Fatalf("set name: %d %s", res.Status, res.Body)
	}
	doc = b.Page("/")
	if got := testID(doc, "greeting"); got != "Hello, Ada!" {
		t.Errorf("greeting after setting the name = %q, want %q", got, "Hello, Ada!")
	}
	if got := inputValue(t, doc, "Your name"); got != "Ada" {
		t.Errorf("Your name = %q, want Ada", got)
	}
}

func TestFieldChangeAnswersSavedWithFreshParts(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.Page("/")
	res := b.Type("user", "username", "Grace")
	if res.Status != 200 || !strings.HasPrefix(res.Body, "Saved") {
		t.Fatalf("answer = %d %q, want 200 starting with Saved", res.Status, res.Body)
	}
	doc := mustParse(t, res.Body)
	if got := testID(doc, "greeting"); got != "Hello, Grace!" {
		t.Errorf("greeting in the answer = %q, want Hello, Grace!", got)
	}
	// The control being typed in is not redrawn (nor, in this answer, its
	// siblings: the live connection keeps those current).
	if doc.Find("#input-user-username").Length() != 0 {
		t.Errorf("the answer redraws the input that is being typed in")
	}
	if got := doc.Find(`tr[data-key="username"] code`).Text(); got != `"Grace"` {
		t.Errorf("the inspector row in the answer shows %q, want \"Grace\"", got)
	}
	// Only what the change touched: not the scope's other rows.
	if n := doc.Find("tr[data-key]").Length(); n != 1 {
		t.Errorf("the answer carries %d inspector rows, want the one it changed", n)
	}
}

func TestUserScopeIsPerBrowserAndGeneralIsShared(t *testing.T) {
	a := MustStart(t)
	alice, bob := a.NewBrowser(t), a.NewBrowser(t)
	alice.Page("/")
	bob.Page("/")
	alice.Type("user", "user_note", "alice's note")
	alice.Type("general", "global_text", "hello everyone")
	alice.Type("browser", "browser_note", "in alice's cookie")

	doc := bob.Page("/")
	if got := inputValue(t, doc, "Your Persistent Note"); got != "" {
		t.Errorf("bob sees note %q, want empty", got)
	}
	if got := inputValue(t, doc, "Browser"); got != "" {
		t.Errorf("bob sees browser value %q, want empty", got)
	}
	if got := inputValue(t, doc, "Global Message"); got != "hello everyone" {
		t.Errorf("bob sees global %q, want %q", got, "hello everyone")
	}
	doc = alice.Page("/")
	if got := inputValue(t, doc, "Your Persistent Note"); got != "alice's note" {
		t.Errorf("alice sees note %q, want %q", got, "alice's note")
	}
	if got := inputValue(t, doc, "Browser"); got != "in alice's cookie" {
		t.Errorf("alice sees browser value %q, want %q", got, "in alice's cookie")
	}
}

func TestTabScopeIsPerTab(t *testing.T) {
	a := MustStart(t)
	tab1 := a.NewBrowser(t)
	tab1.Page("/")
	tab2 := *tab1 // same browser (cookie jar), another tab
	tab2.tab = newUUID()

	tab1.Type("tab", "tab_data", "only in tab 1")
	if got := inputValue(t, tab1.TabPanel(), "Tab-Specific Data"); got != "only in tab 1" {
		t.Errorf("tab 1 sees %q, want %q", got, "only in tab 1")
	}
	if got := inputValue(t, tab2.TabPanel(), "Tab-Specific Data"); got != "" {
		t.Errorf("tab 2 sees %q, want empty", got)
	}
}

func TestTabRequestsNeedAValidTabID(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	for name, tabID := range map[string]string{
		"missing":   "",
		"not uuid":  "tab-1",
		"too long":  strings.Repeat("a", 10_000),
		"bad chars": "0000000g-0000-4000-8000-000000000000",
	} {
		t.Run(name, func(t *testing.T) {
			res := b.Do("POST", "/scopes/tab/fields/tab_data", strings.NewReader("value=x"),
				map[string]string{"X-Tab-ID": tabID, "Content-Type": "application/x-www-form-urlencoded"})
			if res.Status != 400 || !strings.Contains(res.Body, "X-Tab-ID") {
				t.Errorf("field change: got %d %q, want 400 naming X-Tab-ID", res.Status, res.Body)
			}
			res = b.Do("GET", "/api/storage/tab", nil, map[string]string{"X-Tab-ID": tabID})
			if res.Status != 400 {
				t.Errorf("API list: got %d, want 400", res.Status)
			}
		})
	}
}

func TestVisitCountersCount(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	other := a.NewBrowser(t)

	b.View("/")
	other.View("/")
	doc := b.View("/settings")
	for scope, want := range map[string]string{"general": "3", "user": "2", "browser": "2", "tab": "2"} {
		if got := testID(doc, "visits-"+scope); got != want {
			t.Errorf("visits-%s = %s, want %s", scope, got, want)
		}
	}
	// The tab counts loads of itself: a reload counts, a new tab starts at 1.
	if got := testID(b.TabPanel(), "visits-tab"); got != "3" {
		t.Errorf("visits-tab after a reload = %s, want 3", got)
	}
	newTab := *b
	newTab.tab = newUUID()
	if got := testID(newTab.TabPanel(), "visits-tab"); got != "1" {
		t.Errorf("visits-tab of a new tab = %s, want 1", got)
	}
	// A page alone (no script to load its tab's panel) counts nothing.
	if got := testID(b.Page("/"), "visits-general"); got != "5" {
		t.Errorf("visits-general on a page = %s, want 5 (as counted so far)", got)
	}
	// The user scope remembers the last page.
	res := b.API("GET", "user/last_visited_page", "")
	if !strings.Contains(res.Body, `"value":"/"`) {
		t.Errorf("last_visited_page = %s, want / (the last tab panel came from no page)", res.Body)
	}
	b.View("/settings")
	if res := b.API("GET", "user/last_visited_page", ""); !strings.Contains(res.Body, `"value":"/settings"`) {
		t.Errorf("last_visited_page = %s, want /settings", res.Body)
	}
}

// Every scope counts the same way: a counter set to something that is not
// a number it can count up from starts again at 1.
func TestVisitCountersRestartFromWhatTheyCannotCount(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.Page("/")
	for _, value := range []string{`"many"`, `2.5`, `9223372036854775807`} {
		for _, scope := range []string{"general", "user", "browser"} {
			if res := b.API("PUT", scope+"/visits", value); res.Status != 200 {
				t.Fatalf("set %s visits to %s: %d %s", scope, value, res.Status, res.Body)
			}
		}
		doc := b.View("/")
		for _, scope := range []string{"general", "user", "browser"} {
			if got := testID(doc, "visits-"+scope); got != "1" {
				t.Errorf("visits-%s after %s = %s, want 1", scope, value, got)
			}
		}
	}
}

func TestDuplicatedTabStartsWithACopy(t *testing.T) {
	a := MustStart(t)
	orig := a.NewBrowser(t)
	orig.Page("/")
	orig.TabPanel()
	orig.Type("tab", "tab_data", "draft")

	dup := *orig
	dup.tab = newUUID()
	res := dup.Do("POST", "/scopes/tab/visit", nil, map[string]string{"X-Tab-Copy-From": orig.tab})
	if got := inputValue(t, mustParse(t, res.Body), "Tab-Specific Data"); got != "draft" {
		t.Fatalf("duplicate starts with %q, want %q", got, "draft")
	}
	dup.Type("tab", "tab_data", "changed in copy")
	if got := inputValue(t, orig.TabPanel(), "Tab-Specific Data"); got != "draft" {
		t.Errorf("original shows %q after the copy changed, want %q", got, "draft")
	}
	// Another browser cannot copy this tab: its copy is empty.
	thief := a.NewBrowser(t)
	res = thief.Do("POST", "/scopes/tab/visit", nil, map[string]string{"X-Tab-Copy-From": orig.tab})
	if got := inputValue(t, mustParse(t, res.Body), "Tab-Specific Data"); got != "" {
		t.Errorf("another browser copied the tab: sees %q", got)
	}
}

func TestTamperedCookieGetsAFreshIdentity(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.Page("/")
	b.Type("user", "user_note", "secret note")

	u, _ := url.Parse(a.URL)
	cookies := b.client.Jar.Cookies(u)
	if len(cookies) != 1 {
		t.Fatalf("cookies = %v, want one", cookies)
	}
	// A cookie made under another secret (another deployment, or a key
	// retired from rotation).
	other := MustStart(t, func(c *handlers.Config) { c.Secrets = []string{"another-secret-another-secret-0123456789"} })
	ob := other.NewBrowser(t)
	ob.Page("/")
	ou, _ := url.Parse(other.URL)
	foreign := ob.client.Jar.Cookies(ou)[0].Value
	for name, value := range map[string]string{
		"flipped":     flip(cookies[0].Value),
		"truncated":   cookies[0].Value[:len(cookies[0].Value)/2],
		"garbage":     "not-a-cookie",
		"foreign key": foreign,
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", a.URL+"/", nil)
			req.AddCookie(&http.Cookie{Name: cookies[0].Name, Value: value})
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("status = %d, want 200", res.StatusCode)
			}
			doc, _ := goqueryFrom(res)
			if got := inputValue(t, doc, "Your Persistent Note"); got != "" {
				t.Errorf("tampered cookie reached note %q", got)
			}
			if len(res.Cookies()) != 1 {
				t.Errorf("no fresh cookie issued")
			}
		})
	}
	if got := inputValue(t, b.Page("/"), "Your Persistent Note"); got != "secret note" {
		t.Errorf("the real cookie lost its note: %q", got)
	}
}

func flip(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestCrossOriginWritesAreRefused(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.Page("/")
	for name, h := range map[string]map[string]string{
		"sec-fetch-site": {"Sec-Fetch-Site": "cross-site"},
		"origin":         {"Origin": "https://evil.example"},
	} {
		t.Run(name, func(t *testing.T) {
			h["Content-Type"] = "application/x-www-form-urlencoded"
			res := b.Do("POST", "/scopes/general/fields/global_text", strings.NewReader("value=pwned"), h)
			if res.Status != 403 {
				t.Errorf("form post: got %d, want 403", res.Status)
			}
			h["Content-Type"] = "application/json"
			res = b.Do("PUT", "/api/storage/general/global_text", strings.NewReader(`"pwned"`), h)
			if res.Status != 403 || !strings.Contains(res.Body, `"error"`) {
				t.Errorf("API put: got %d %s, want 403 with a JSON error", res.Status, res.Body)
			}
		})
	}
	if _, err := a.Store.Get(context.Background(), store.GeneralOwner, "global_text"); err != store.ErrNotFound {
		t.Errorf("a refused write changed global_text (err %v)", err)
	}
}

func TestHTMLValuesAreEscaped(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	payload := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	b.Type("general", "global_text", payload)
	b.API("PUT", "user/"+url.PathEscape("<b>key</b>"), `"<i>x</i>"`)
	res := b.Do("GET", "/", nil, map[string]string{"HX-Request": ""})
	if strings.Contains(res.Body, "<script>alert") || strings.Contains(res.Body, "<img src=x") || strings.Contains(res.Body, "<b>key</b>") {
		t.Errorf("page contains unescaped HTML from a value")
	}
	if got := inputValue(t, mustParse(t, res.Body), "Global Message"); got != payload {
		t.Errorf("Global Message = %q, want the payload as text", got)
	}
}

func TestAPI(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)

	res := b.API("PUT", "user/prefs", `{"theme": "dark", "size": 3}`)
	var put struct {
		Key     string          `json:"key"`
		Value   json.RawMessage `json:"value"`
		Version int64           `json:"version"`
	}
	if res.Status != 200 || json.Unmarshal([]byte(res.Body), &put) != nil {
		t.Fatalf("PUT: %d %s", res.Status, res.Body)
	}
	if put.Key != "prefs" || string(put.Value) != `{"theme":"dark","size":3}` || put.Version == 0 {
		t.Errorf("PUT answered %+v", put)
	}
	if res := b.API("GET", "user/prefs", ""); !strings.Contains(res.Body, `"value":{"theme":"dark","size":3}`) {
		t.Errorf("GET = %s", res.Body)
	}
	b.API("PUT", "user/b", `[1,2]`)
	if res := b.API("GET", "user", ""); res.Body != `{"b":[1,2],"prefs":{"theme":"dark","size":3}}`+"\n" {
		t.Errorf("list = %s", res.Body)
	}
	if res := b.API("DELETE", "user/prefs", ""); res.Status != 204 {
		t.Errorf("DELETE = %d, want 204", res.Status)
	}
	if res := b.API("GET", "user/prefs", ""); res.Status != 404 {
		t.Errorf("GET deleted = %d, want 404", res.Status)
	}
	if res := b.API("DELETE", "user", ""); res.Status != 200 || !strings.Contains(res.Body, `"deleted":1`) {
		t.Errorf("clear = %d %s", res.Status, res.Body)
	}
	// Browser scope through the API, kept in the cookie.
	b.API("PUT", "browser/color", `"teal"`)
	if res := b.API("GET", "browser/color", ""); !strings.Contains(res.Body, `"teal"`) {
		t.Errorf("browser GET = %s", res.Body)
	}
}

// TestBadInputChangesNothing: each bad request to the page endpoints and
// the API answers its status with a plain message (JSON under /api/), and
// every scope is the same afterwards.
func TestBadInputChangesNothing(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.Page("/")
	b.API("PUT", "general/keep", `"kept"`)
	b.API("PUT", "user/keep", `"kept"`)
	b.API("PUT", "tab/keep", `"kept"`)
	before := state(t, b)

	form := "application/x-www-form-urlencoded"
	big := strings.Repeat("x", 17<<10)
	live := newUUID() // a tab or page-load id
	cases := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		message                  string
	}{
		// The page's endpoints.
		{"tab id missing", "POST", "/scopes/tab/fields/tab_data", "value=x", map[string]string{"X-Tab-ID": ""}, 400, "X-Tab-ID header (the tab id) is missing"},
		{"tab id not a UUID", "POST", "/scopes/tab/fields/tab_data", "value=x", map[string]string{"X-Tab-ID": "tab-1"}, 400, "not a UUID"},
		{"tab id 10 KB long", "POST", "/scopes/tab/fields/tab_data", "value=x", map[string]string{"X-Tab-ID": strings.Repeat("a", 10<<10)}, 400, "not a UUID"},
		{"tab id with a bad character", "POST", "/scopes/tab/fields/tab_data", "value=x", map[string]string{"X-Tab-ID": "0000000g-0000-4000-8000-000000000000"}, 400, "not a UUID"},
		{"client id missing", "POST", "/scopes/client/fields/client_note", "value=x", nil, 400, "X-Client-ID"},
		{"client id not a UUID", "POST", "/scopes/client/fields/client_note", "value=x", map[string]string{"X-Client-ID": "../../etc"}, 400, "X-Client-ID"},
		{"unknown field", "POST", "/scopes/user/fields/password", "value=x", nil, 404, "no field"},
		{"unknown scope", "POST", "/scopes/session/fields/x", "value=x", nil, 404, "no field"},
		{"unknown scope in the inspector", "POST", "/scopes/session/entries", "key=k&value=1", nil, 404, "unknown scope"},
		{"field value too large", "POST", "/scopes/user/fields/user_note", "value=" + big, nil, 413, "larger than"},
		{"field body too large", "POST", "/scopes/user/fields/user_note", "value=" + strings.Repeat("x", 65<<10), nil, 413, "too large"},
		{"field value not UTF-8", "POST", "/scopes/user/fields/user_note", "value=%ff%fe", nil, 400, "UTF-8"},
		{"inspector: empty key", "POST", "/scopes/user/entries", "key=&value=1", nil, 400, "key is empty"},
		{"inspector: key too long", "POST", "/scopes/user/entries", "key=" + strings.Repeat("k", 129) + "&value=1", nil, 400, "longer than 128"},
		{"inspector: control character in key", "POST", "/scopes/user/entries", "key=a%07b&value=1", nil, 400, "control"},
		{"inspector: NUL in key", "POST", "/scopes/user/entries", "key=a%00b&value=1", nil, 400, "control"},
		{"inspector: ../ in key", "POST", "/scopes/user/entries", "key=../etc&value=1", nil, 400, `"/"`},
		{"inspector: malformed JSON", "POST", "/scopes/user/entries", "key=k&value=%7Boops", nil, 400, "not valid JSON"},
		{"inspector: deeply nested JSON", "POST", "/scopes/user/entries", "key=k&value=" + strings.Repeat("%5B", 40) + strings.Repeat("%5D", 40), nil, 400, "nested"},
		{"inspector: delete a missing key", "DELETE", "/scopes/user/entries/missing", "", nil, 404, "no such key"},
		{"inspector: filter longer than a key", "GET", "/scopes/user/entries?q=" + strings.Repeat("k", 129), "", nil, 400, "the filter must be valid text of at most 128"},
		{"inspector: filter not UTF-8", "GET", "/scopes/user/entries?q=%ff", "", nil, 400, "the filter must be valid text"},
		{"inspector: show more after no key", "GET", "/scopes/user/entries?after=a%2Fb", "", nil, 400, "after must be a key"},
		{"inspector: the whole value of a missing key", "GET", "/scopes/user/entries/missing", "", nil, 404, "no such key"},
		{"live: rows not a number", "GET", "/live?tab=" + live + "&client=" + live + "&n-general=lots", "", nil, 400, "n-general must be a number"},
		{"live: filter longer than a key", "GET", "/live?tab=" + live + "&client=" + live + "&q-user=" + strings.Repeat("k", 129), "", nil, 400, "q-user must be valid text"},
		{"no lazy panel for the general scope", "POST", "/scopes/general/visit", "", nil, 404, "no lazy panel"},
		{"cross-site form post", "POST", "/scopes/general/fields/global_text", "value=pwned", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "cross-origin"},
		{"foreign Origin", "POST", "/scopes/general/fields/global_text", "value=pwned", map[string]string{"Origin": "https://evil.example"}, 403, "cross-origin"},
		{"page method not allowed", "PUT", "/scopes/general/fields/global_text", "value=x", nil, 405, "method not allowed"},
		{"no such page", "GET", "/admin", "", nil, 404, "not found"},
		// The JSON API.
		{"API: unknown scope", "PUT", "/api/storage/nope/k", `1`, nil, 404, "unknown scope"},
		{"API: client scope", "GET", "/api/storage/client", ``, nil, 404, "unknown scope"},
		{"API: missing key", "GET", "/api/storage/general/missing", ``, nil, 404, "no such key"},
		{"API: delete a missing key", "DELETE", "/api/storage/general/missing", ``, nil, 404, "no such key"},
		{"API: malformed JSON", "PUT", "/api/storage/general/k", `{"a":`, nil, 400, "not valid JSON"},
		{"API: two values", "PUT", "/api/storage/general/k", `1 2`, nil, 400, "one JSON value"},
		{"API: empty body", "PUT", "/api/storage/general/k", ``, nil, 400, "empty"},
		{"API: wrong content type", "PUT", "/api/storage/general/k", `1`, map[string]string{"Content-Type": "text/plain"}, 415, "application/json"},
		{"API: duplicate object keys", "PUT", "/api/storage/general/k", `{"a":1,"a":2}`, nil, 400, "twice"},
		{"API: number beyond float64", "PUT", "/api/storage/general/k", `1e400`, nil, 400, "number"},
		{"API: invalid UTF-8", "PUT", "/api/storage/general/k", "\"\xff\"", nil, 400, "UTF-8"},
		{"API: nested 40 deep", "PUT", "/api/storage/general/k", strings.Repeat("[", 40) + strings.Repeat("]", 40), nil, 400, "nested"},
		{"API: value too large", "PUT", "/api/storage/general/k", `"` + big + `"`, nil, 413, "larger"},
		{"API: body too large", "PUT", "/api/storage/general/k", `"` + strings.Repeat("x", 65<<10) + `"`, nil, 413, "too large"},
		{"API: key too long", "PUT", "/api/storage/general/" + strings.Repeat("k", 129), `1`, nil, 400, "longer than 128"},
		{"API: %00 in key", "PUT", "/api/storage/general/a%00b", `1`, nil, 400, "control"},
		{"API: .. as key", "PUT", "/api/storage/general/..", `1`, nil, 400, `"."`},
		{"API: escaped / in key", "PUT", "/api/storage/general/a%2Fb", `1`, nil, 400, `"/"`},
		{"API: tab id not a UUID", "PUT", "/api/storage/tab/k", `1`, map[string]string{"X-Tab-ID": "x"}, 400, "not a UUID"},
		{"API: method not allowed", "POST", "/api/storage/general/k", `1`, nil, 405, "method not allowed"},
		{"API: cross-site write", "PUT", "/api/storage/general/keep", `"pwned"`, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "cross-origin"},
		{"API: foreign Origin", "DELETE", "/api/storage/general", ``, map[string]string{"Origin": "https://evil.example"}, 403, "cross-origin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api := strings.HasPrefix(c.path, "/api/")
			h := map[string]string{"Content-Type": form}
			if api {
				h = map[string]string{"Content-Type": "application/json", "HX-Request": ""}
			}
			for k, v := range c.header {
				h[k] = v
			}
			var res response
			if c.body != "" {
				res = b.Do(c.method, c.path, strings.NewReader(c.body), h)
			} else {
				res = b.Do(c.method, c.path, nil, h)
			}
			if res.Status != c.status {
				t.Errorf("status = %d, want %d (%s)", res.Status, c.status, res.Body)
			}
			msg := res.Body
			if api {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(res.Body), &e); err != nil {
					t.Errorf("body %q is not a JSON error", res.Body)
				}
				msg = e.Error
			} else if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
			if !strings.Contains(msg, c.message) {
				t.Errorf("message = %q, want it to contain %q", msg, c.message)
			}
			if after := state(t, b); after != before {
				t.Errorf("something changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	if len(cases) < 30 {
		t.Errorf("only %d cases", len(cases))
	}
}

// state is everything b can see in the general, user, tab and browser
// scopes, visit counters aside, as one string.
func state(t *testing.T, b *browser) string {
	t.Helper()
	var sb strings.Builder
	for _, scope := range []string{"general", "user", "tab", "browser"} {
		res := b.API("GET", scope, "")
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(res.Body), &m); err != nil {
			t.Fatalf("GET %s: %d %s", scope, res.Status, res.Body)
		}
		delete(m, "visits")
		out, _ := json.Marshal(m)
		sb.WriteString(scope + "=" + string(out) + " ")
	}
	return sb.String()
}

// The browser scope lives as long as the cookie: 400 days from the last
// page load, HttpOnly, SameSite=Lax, for the whole site.
func TestCookieLifetimeAndFlags(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	res := b.Do("GET", "/", nil, map[string]string{"HX-Request": ""})
	cookies := (&http.Response{Header: res.Header}).Cookies()
	if len(cookies) != 1 {
		t.Fatalf("Set-Cookie = %v, want one cookie", res.Header.Values("Set-Cookie"))
	}
	c := cookies[0]
	if c.MaxAge != 400*24*3600 || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
		t.Errorf("cookie = %+v, want Max-Age 400 days, HttpOnly, SameSite=Lax, Path=/, not Secure over plain HTTP", c)
	}
	// Every page view renews it (its tab's panel, which counts the view in
	// the browser scope, inside the cookie).
	res = b.Do("POST", "/scopes/tab/visit", nil, nil)
	if len(res.Header.Values("Set-Cookie")) != 1 {
		t.Errorf("a returning page view did not renew the cookie")
	}
}

// What a person types is stored as typed: the inspector and the API show
// <, > and & as they are (the page escapes them for HTML).
func TestTypedTextIsStoredAsTyped(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.Type("user", "user_note", `a<b & c>d`)
	if res := b.API("GET", "user/user_note", ""); !strings.Contains(res.Body, `"value":"a<b & c>d"`) {
		t.Errorf("stored %s, want the text as typed", res.Body)
	}
}
