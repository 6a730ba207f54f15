package handlers_test

// Bad input gets a clear error and changes nothing.

import (
	"encoding/json"
	"strings"
	"testing"
)

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
