package handlers_test

import (
	"encoding/json"
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
			if res := b.API("PUT", scope+"/visits", value); res.Status >= 300 {
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

func TestAPI(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)

	res := b.API("PUT", "user/prefs", `{"theme": "dark", "size": 3}`)
	var put struct {
		Key     string          `json:"key"`
		Value   json.RawMessage `json:"value"`
		Version int64           `json:"version"`
	}
	if res.Status != 201 || json.Unmarshal([]byte(res.Body), &put) != nil {
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

// A browser at its tab cap that duplicates its least recently used tab
// still starts the copy with that tab's rows: the new tab is numbered (and
// the oldest evicted) only after the copy.
func TestDuplicatingTheOldestTabAtTheCapKeepsItsRows(t *testing.T) {
	a := MustStartWith(t, store.Options{Limits: store.Limits{TabsPerUser: 2}},
		func(c *handlers.Config) { c.Limits.TabsPerUser = 2 })
	oldest := a.NewBrowser(t)
	oldest.Page("/")
	oldest.TabPanel()
	oldest.Type("tab", "tab_data", "the oldest tab's")
	other := *oldest
	other.tab = newUUID()
	other.TabPanel()
	other.Type("tab", "tab_data", "another tab's")

	dup := *oldest
	dup.tab = newUUID()
	res := dup.Do("POST", "/scopes/tab/visit", nil, map[string]string{"X-Tab-Copy-From": oldest.tab})
	if got := inputValue(t, mustParse(t, res.Body), "Tab-Specific Data"); got != "the oldest tab's" {
		t.Errorf("the copy of the oldest tab at the cap starts with %q, want %q", got, "the oldest tab's")
	}
}
