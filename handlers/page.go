package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// binding is a control of the page bound to one key of one scope.
type binding struct {
	scope, key, label string
	checkbox          bool
}

// bindings are the page's bound controls, in the order they are drawn.
var bindings = []binding{
	{scopeGeneral, "global_text", "Global Message", false},
	{scopeUser, "username", "Your name", false},
	{scopeUser, "user_note", "Your Persistent Note", false},
	{scopeUser, "dark_mode", "Dark Mode", true},
	{scopeBrowser, "browser_note", "Browser", false},
	{scopeTab, "tab_data", "Tab-Specific Data", false},
	{scopeClient, "client_note", "Client", false},
}

func findBinding(scope, key string) (binding, bool) {
	for _, b := range bindings {
		if b.scope == scope && b.key == key {
			return b, true
		}
	}
	return binding{}, false
}

// pageScopes are the scopes of the page, widest first; the tab and client
// panels load themselves once the page's script can name the tab and page.
var pageScopes = []string{scopeGeneral, scopeUser, scopeBrowser, scopeTab, scopeClient}

// Keys the page itself writes.
const (
	keyVisits      = "visits"
	keyUsername    = "username"
	keyLastVisited = "last_visited_page"
	defaultName    = "Guest"
)

// panelHeads makes each scope's panel head once: its title and the line on
// its lifetime, and the parts of the panel drawn from them alone.
func panelHeads(storeName string, userTTL, tabTTL time.Duration) (map[string]views.Panel, error) {
	lines := map[string][2]string{
		scopeGeneral: {"General", "Shared by everyone. Kept in " + storeName + ": survives restarts, forever."},
		scopeUser: {"User", fmt.Sprintf("This browser, by a signed and encrypted cookie id. Kept in %s: survives restarts; forgotten after %s unused.",
			storeName, humanDuration(userTTL))},
		scopeBrowser: {"Browser", "Inside the cookie itself (about 4 KiB in all): lives as long as the cookie, and travels with every request."},
		scopeTab: {"Tab", fmt.Sprintf("This tab only, by an id in sessionStorage. Kept in %s: survives reloads and restarts; a new tab starts empty; forgotten after %s unused.",
			storeName, humanDuration(tabTTL))},
		scopeClient: {"Client", "This page load only. Kept in server memory: gone soon after the page closes, and on restart."},
	}
	heads := map[string]views.Panel{}
	for scope, l := range lines {
		p, err := views.NewPanel(scope, l[0], l[1])
		if err != nil {
			return nil, err
		}
		heads[scope] = p
	}
	return heads, nil
}

// panel builds the view of one scope from a snapshot of it.
func (s *Server) panel(scope string, snap store.Snapshot) views.Panel {
	p := s.panelData(scope, snap)
	for _, b := range bindings {
		if b.scope != scope {
			continue
		}
		f := views.Field{Scope: scope, Key: b.key, Label: b.label, Checkbox: b.checkbox}
		if e, ok := findEntry(snap.Entries, b.key); ok {
			f.Text = displayText(e.Value)
			f.Checked = string(e.Value) == "true"
		}
		p.Fields = append(p.Fields, f)
	}
	return p
}

// panelData is a panel without its bound controls: what the answer to a
// bound control carries.
func (s *Server) panelData(scope string, snap store.Snapshot) views.Panel {
	p := s.heads[scope]
	p.Visits, p.Version = "0", snap.Version
	p.Entries = make([]views.Entry, 0, len(snap.Entries))
	for _, e := range snap.Entries {
		p.Entries = append(p.Entries, views.Entry{Key: e.Key, JSON: string(e.Value), Version: e.Version})
	}
	if e, ok := findEntry(snap.Entries, keyVisits); ok {
		p.Visits = string(e.Value)
	}
	return p
}

// findEntry finds key among entries (a scan: a panel looks up a few keys).
func findEntry(entries []store.Entry, key string) (store.Entry, bool) {
	for _, e := range entries {
		if e.Key == key {
			return e, true
		}
	}
	return store.Entry{}, false
}

// displayText is how a JSON value shows in a text input: a string as its
// text, anything else as its JSON.
func displayText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// greetingName is the user's name, or the default.
func greetingName(entries []store.Entry) string {
	if e, ok := findEntry(entries, keyUsername); ok {
		if name := displayText(e.Value); name != "" {
			return name
		}
	}
	return defaultName
}

// handlePage serves a full page: it counts the visit in every scope it can
// see (the tab counts its own visit when its panel loads), remembers the
// page in the user scope, and draws every panel.
func (s *Server) handlePage(path string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		id := identityFrom(r)
		// The visit counts in the general and user scopes, and the page the
		// user saw last, in one write.
		if _, err := s.store.Apply(ctx, "",
			store.Mutation{Owner: store.GeneralOwner, Key: keyVisits, Increment: true},
			store.Mutation{Owner: store.UserOwner(id.UserID), Key: keyVisits, Increment: true},
			store.Mutation{Owner: store.UserOwner(id.UserID), Key: keyLastVisited, Value: mustJSON(path)},
		); err != nil {
			return err
		}
		// The browser scope's counter also re-issues the cookie, which keeps
		// it alive for another cookieMaxAge.
		browser, err := s.dictFor(w, r, scopeBrowser)
		if err != nil {
			return err
		}
		if _, err := browser.Increment(ctx, keyVisits); err != nil {
			return err
		}

		page := views.Page{
			Boot: views.Boot(s.store.Boot()),
			Nav: []views.NavLink{
				{Path: "/", Label: "Home", Current: path == "/"},
				{Path: "/settings", Label: "Settings", Current: path == "/settings"},
			},
			Title:   "Home",
			LiveURL: "/live",
		}
		if path == "/settings" {
			page.Title = "Settings"
		}
		page.Panels = make([]views.Panel, 0, len(pageScopes))
		for _, scope := range pageScopes {
			if scope == scopeTab || scope == scopeClient { // they load themselves
				p := s.heads[scope]
				p.Lazy = true
				page.Panels = append(page.Panels, p)
				continue
			}
			d := browser // already made, and already counted in
			if scope != scopeBrowser {
				if d, err = s.dictFor(w, r, scope); err != nil {
					return err
				}
			}
			snap, err := d.List(ctx)
			if err != nil {
				return err
			}
			if scope == scopeUser {
				page.Name = greetingName(snap.Entries)
				page.NameVersion = snap.Version
			}
			page.Panels = append(page.Panels, s.panel(scope, snap))
		}
		return render(w, r, http.StatusOK, views.FullPage(page))
	}
}

// handleVisit loads a lazy panel and counts the visit in its scope. For a
// duplicated tab (X-Tab-Copy-From) it first copies the original tab's rows.
func (s *Server) handleVisit(w http.ResponseWriter, r *http.Request) error {
	scope := chi.URLParam(r, "scope")
	if scope != scopeTab && scope != scopeClient {
		return notFound(fmt.Sprintf("scope %q has no lazy panel", scope))
	}
	d, err := s.dictFor(w, r, scope)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if from := r.Header.Get(headerCopyFrom); from != "" && scope == scopeTab {
		from, err := checkUUID("X-Tab-Copy-From header", from)
		if err != nil {
			return err
		}
		tab, _ := tabID(r)
		err = s.store.CopyTab(ctx, identityFrom(r).UserID, from, tab, "")
		// A tab that already has rows keeps them: a replayed copy never
		// overwrites.
		if err != nil && !errors.Is(err, store.ErrTabExists) {
			return err
		}
	}
	if _, err := d.Increment(ctx, keyVisits); err != nil {
		return err
	}
	snap, err := d.List(ctx)
	if err != nil {
		return err
	}
	return render(w, r, http.StatusOK, views.ScopePanel(s.panel(scope, snap)))
}

// handleFieldChange stores a bound control's new value: text as a JSON
// string, a checkbox as true or false.
func (s *Server) handleFieldChange(w http.ResponseWriter, r *http.Request) error {
	scope, key := chi.URLParam(r, "scope"), chi.URLParam(r, "key")
	b, ok := findBinding(scope, key)
	if !ok {
		return notFound(fmt.Sprintf("no field %q in scope %q", key, scope))
	}
	d, err := s.dictFor(w, r, scope)
	if err != nil {
		return err
	}
	if err := parseForm(r); err != nil {
		return err
	}
	var value json.RawMessage
	if b.checkbox {
		value = mustJSON(r.PostForm.Has("value"))
	} else {
		text := r.PostForm.Get("value")
		if !utf8.ValidString(text) {
			return badRequest("value is not valid UTF-8")
		}
		// A string the server encoded itself needs no parsing, only the
		// size check.
		value = mustJSON(text)
		if err := checkSize(value, s.limits); err != nil {
			return err
		}
	}
	if _, err := d.Set(r.Context(), key, value); err != nil {
		return err
	}
	return s.renderUpdate(w, r, scope, d, true, "Saved")
}

// handleEntrySet is the inspector's form: any key to any JSON value.
func (s *Server) handleEntrySet(w http.ResponseWriter, r *http.Request) error {
	scope := chi.URLParam(r, "scope")
	d, err := s.dictFor(w, r, scope)
	if err != nil {
		return err
	}
	if err := parseForm(r); err != nil {
		return err
	}
	key := r.PostForm.Get("key")
	if err := checkKey(key, s.limits.KeyRunes); err != nil {
		return err
	}
	value, err := parseValue([]byte(r.PostForm.Get("value")), s.limits)
	if err != nil {
		return err
	}
	if _, err := d.Set(r.Context(), key, value); err != nil {
		return err
	}
	return s.renderUpdate(w, r, scope, d, false, fmt.Sprintf("Set %q.", key))
}

// handleEntryDelete is the inspector's delete button.
func (s *Server) handleEntryDelete(w http.ResponseWriter, r *http.Request) error {
	scope := chi.URLParam(r, "scope")
	key, err := keyParam(r, s.limits)
	if err != nil {
		return err
	}
	d, err := s.dictFor(w, r, scope)
	if err != nil {
		return err
	}
	if err := d.Delete(r.Context(), key); err != nil {
		return err
	}
	return s.renderUpdate(w, r, scope, d, false, fmt.Sprintf("Deleted %q.", key))
}

// handleEntriesClear is the inspector's clear-all button.
func (s *Server) handleEntriesClear(w http.ResponseWriter, r *http.Request) error {
	scope := chi.URLParam(r, "scope")
	d, err := s.dictFor(w, r, scope)
	if err != nil {
		return err
	}
	n, err := d.Clear(r.Context())
	if err != nil {
		return err
	}
	return s.renderUpdate(w, r, scope, d, false, fmt.Sprintf("Cleared %d keys.", n))
}

// renderUpdate answers a write: message for where it came from, and fresh
// copies of the scope's counter, entries, greeting and (unless noFields, for
// the answer to a bound control) controls.
func (s *Server) renderUpdate(w http.ResponseWriter, r *http.Request, scope string, d dict, noFields bool, message string) error {
	snap, err := d.List(r.Context())
	if err != nil {
		return err
	}
	u := views.Update{NoFields: noFields, Message: message}
	if noFields {
		u.Panel = s.panelData(scope, snap)
	} else {
		u.Panel = s.panel(scope, snap)
	}
	if scope == scopeUser {
		name := greetingName(snap.Entries)
		u.Name = &name
	}
	return render(w, r, http.StatusOK, views.ScopeUpdate(u))
}

// parseForm parses a form body, with a clear error for a body too large.
func parseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return badRequest("the form could not be read")
	}
	return nil
}

// keyParam returns the {key} of the URL, decoded and checked. chi matches
// on the escaped path when the URL has escapes that decoding would lose.
func keyParam(r *http.Request, l Limits) (string, error) {
	key := chi.URLParam(r, "key")
	if r.URL.RawPath != "" {
		var err error
		if key, err = url.PathUnescape(key); err != nil {
			return "", badRequest("key is not a valid URL path segment")
		}
	}
	return key, checkKey(key, l.KeyRunes)
}

// mustJSON encodes a value that always encodes, leaving <, > and & as they
// are (the views escape for HTML; the inspector shows the JSON as typed).
func mustJSON(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// humanDuration writes a TTL the way a person says it: "30 days", "24 hours".
func humanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "never"
	case d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	}
	return d.String()
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
