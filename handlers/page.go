package handlers

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// The page: a full page per path, the panels that load themselves, and the
// bound controls' changes.

// binding is a control of the page bound to one key of one scope.
type binding struct {
	scope      store.Scope
	key, label string
	kind       string         // "text", "textarea", "checkbox", "range" or "select"
	min, max   int            // a range's bounds
	def        string         // what a range shows before it is set
	options    []views.Option // a select's choices
}

// tabColors are the tints a tab can take.
var tabColors = []views.Option{{Value: "", Label: "None"}, {Value: "red", Label: "Red"}, {Value: "amber", Label: "Amber"},
	{Value: "green", Label: "Green"}, {Value: "blue", Label: "Blue"}, {Value: "purple", Label: "Purple"}}

// bindings are the page's bound controls, in the order they are drawn.
var bindings = []binding{
	{scope: store.General, key: "global_text", label: "Global Message", kind: "text"},
	{scope: store.General, key: "shared_notes", label: "Shared notes", kind: "textarea"},
	{scope: store.User, key: "username", label: "Your name", kind: "text"},
	{scope: store.User, key: "user_note", label: "Your Persistent Note", kind: "text"},
	{scope: store.User, key: "dark_mode", label: "Dark Mode", kind: "checkbox"},
	{scope: store.User, key: "font_size", label: "Font size", kind: "range", min: 12, max: 24, def: "16"},
	{scope: store.Browser, key: "browser_note", label: "Browser", kind: "text"},
	{scope: store.Tab, key: "tab_data", label: "Tab-Specific Data", kind: "text"},
	{scope: store.Tab, key: "tab_color", label: "Tab color", kind: "select", options: tabColors},
	{scope: store.Client, key: "client_note", label: "Client", kind: "text"},
}

// parse is the value a form's change of the control stands for: text as a
// JSON string, a checkbox as true or false, a range as its number, a select
// as its choice. What the control cannot hold is refused.
func (b binding) parse(form url.Values) (json.RawMessage, error) {
	text := form.Get("value")
	switch b.kind {
	case "checkbox":
		return mustJSON(form.Has("value")), nil
	case "range":
		n, err := strconv.Atoi(text)
		if err != nil || n < b.min || n > b.max {
			return nil, badRequest(fmt.Sprintf("%s must be a whole number from %d to %d", b.label, b.min, b.max))
		}
		return mustJSON(n), nil
	case "select":
		names := make([]string, len(b.options))
		for i, o := range b.options {
			if o.Value == text {
				return mustJSON(text), nil
			}
			names[i] = cmp.Or(o.Value, "none")
		}
		return nil, badRequest(fmt.Sprintf("%s must be one of %s", b.label, strings.Join(names, ", ")))
	}
	if !utf8.ValidString(text) {
		return nil, badRequest("value is not valid UTF-8")
	}
	// A string the server encodes itself is valid JSON: only its size is
	// checked (by the store).
	return mustJSON(text), nil
}

func findBinding(scope store.Scope, key string) (binding, bool) {
	for _, b := range bindings {
		if b.scope == scope && b.key == key {
			return b, true
		}
	}
	return binding{}, false
}

// pageScopes are the scopes of the page, widest first; the tab and client
// panels load themselves once the page's script can name the tab and page.
var pageScopes = []store.Scope{store.General, store.User, store.Browser, store.Tab, store.Client}

// Keys the page itself writes.
const (
	keyVisits      = "visits"
	keyUsername    = "username"
	keyLastVisited = "last_visited_page"
	defaultName    = "Guest"
)

// handlePage serves a full page. It only reads: what a page view counts,
// its tab's panel counts as it loads (handleVisit), for only then does the
// server know which tab looks.
func (s *Server) handlePage(path string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		id := identityFrom(r)
		v := viewer{UserID: id.UserID} // a page's first request names no tab
		now := time.Now()
		page := views.Page{
			Boot: views.Boot(s.store.Boot()),
			Nav: []views.NavLink{
				{Path: "/", Label: "Home", Current: path == "/"},
				{Path: "/settings", Label: "Settings", Current: path == "/settings"},
			},
			Title:   "Home",
			LiveURL: "/live",
			Demo:    s.demo != nil,
			Health:  healthView(s.hub.healthNow()),
		}
		if path == "/settings" {
			page.Title = "Settings"
		}
		presence := s.hub.presenceNow()
		shown := map[store.Scope]store.View{}
		page.Panels = make([]views.Panel, 0, len(pageScopes))
		for _, scope := range pageScopes {
			if scope == store.Tab || scope == store.Client { // they load themselves
				p := s.heads[scope]
				p.Lazy = true
				page.Panels = append(page.Panels, p)
				continue
			}
			d, err := s.dict(w, r, scope)
			if err != nil {
				return err
			}
			window := panelWindow(scope, "", inspectorRows)
			window.Latest = views.FeedMax
			view, err := d.View(ctx, window)
			if err != nil {
				return err
			}
			shown[scope] = view
			if scope == store.User {
				page.Name = greetingName(named(scope, view, keyUsername))
				page.NameVersion = view.Version
			}
			p := s.panel(scope, view, "", v, now)
			p.Presence = presenceView(scope, presence, v)
			page.Panels = append(page.Panels, p)
		}
		page.Activity = recentActivity(shown, v, now)
		return render(w, r, http.StatusOK, views.FullPage(page))
	}
}

// handleVisit loads a lazy panel. The tab's panel counts the page view: the
// visits of the general, user, tab and browser scopes and the page last
// seen, all by this tab (whose name it learns here). For a duplicated tab
// (X-Tab-Copy-From) it first copies the original tab's rows. The client's
// panel counts its one visit.
func (s *Server) handleVisit(w http.ResponseWriter, r *http.Request) error {
	scope := store.Scope(chi.URLParam(r, "scope"))
	if scope != store.Tab && scope != store.Client {
		return notFound(fmt.Sprintf("scope %q has no lazy panel", scope))
	}
	ctx := r.Context()
	id := identityFrom(r)
	d, err := s.dict(w, r, scope)
	if err != nil {
		return err
	}
	if scope == store.Client {
		if _, err := d.Increment(ctx, keyVisits); err != nil {
			return err
		}
		return s.renderVisit(w, r, scope, d, nil, "")
	}
	if from := r.Header.Get(headerCopyFrom); from != "" {
		from, err := checkUUID("X-Tab-Copy-From header", from)
		if err != nil {
			return err
		}
		// A tab that already exists keeps what it has: a replayed copy
		// never overwrites.
		if err := s.store.CopyTab(ctx, id.UserID, from, id.TabID); err != nil && !errors.Is(err, store.ErrTabExists) && store.FaultOf(err) == nil {
			return err
		}
	}
	counted, err := s.store.Apply(ctx, id.origin(false),
		store.Mutation{Owner: store.GeneralOwner, Key: keyVisits, Increment: true},
		store.Mutation{Owner: store.UserOwner(id.UserID), Key: keyVisits, Increment: true},
		store.Mutation{Owner: store.UserOwner(id.UserID), Key: keyLastVisited, Value: mustJSON(pagePath(r))},
		store.Mutation{Owner: store.TabOwner(id.UserID, id.TabID), Key: keyVisits, Increment: true},
	)
	if store.FaultOf(err) != nil {
		// Reads still work: the panel, uncounted, says why.
		return s.renderVisit(w, r, scope, d, nil, "This visit was not counted: "+faultReason(err)+".")
	}
	if err != nil {
		return err
	}
	id.learnTab(counted[0].Origin)
	// The browser scope's counter also re-issues the cookie, which keeps
	// it alive for another cookieMaxAge.
	browser, err := s.dict(w, r, store.Browser)
	if err != nil {
		return err
	}
	browserCount, err := browser.Increment(ctx, keyVisits)
	if err != nil {
		return err
	}
	return s.renderVisit(w, r, scope, d, &visitCounts{stored: counted, browser: browserCount}, "")
}

// visitCounts are what a tab's panel load counted.
type visitCounts struct {
	stored  []store.Entry // general visits, user visits, last page, tab visits
	browser store.Entry
}

// renderVisit answers a lazy panel's load: the panel, and for a tab's the
// tab's name and the changes its page view made (the counters of the other
// scopes, the page last seen, their feed items); note says why a visit was
// not counted.
func (s *Server) renderVisit(w http.ResponseWriter, r *http.Request, scope store.Scope, d dict, counts *visitCounts, note string) error {
	ctx := r.Context()
	id := identityFrom(r)
	v, err := s.viewerOf(ctx, id)
	if err != nil {
		return err
	}
	now := time.Now()
	view, err := d.View(ctx, panelWindow(scope, "", inspectorRows))
	if err != nil {
		return err
	}
	visit := views.Visit{Panel: s.panel(scope, view, "", v, now)}
	visit.Panel.Presence = presenceView(scope, nil, v)
	visit.Panel.VisitsNote = note
	if note != "" && v.Tab > 0 {
		visit.TabName = tabName(v.Tab)
	}
	if counts != nil {
		visit.TabName = tabName(v.Tab)
		keys := map[store.Scope]store.View{scope: view} // each scope counted once
		for _, c := range []struct {
			scope store.Scope
			e     store.Entry
		}{
			{store.General, counts.stored[0]}, {store.User, counts.stored[1]}, {store.User, counts.stored[2]},
			{store.Browser, counts.browser}, {store.Tab, counts.stored[3]},
		} {
			counted, ok := keys[c.scope]
			if !ok {
				od, err := s.dict(w, r, c.scope)
				if err != nil {
					return err
				}
				if counted, err = od.View(ctx, store.Window{}); err != nil {
					return err
				}
				keys[c.scope] = counted
			}
			visit.Changes = append(visit.Changes, changeView(setBy(c.scope, c.e), counted.Keys, counted.Version, v, now))
		}
	}
	return render(w, r, http.StatusOK, views.VisitAnswer(visit))
}

// pagePath is the page a tab's panel load comes from (htmx names it in
// HX-Current-URL): one of the app's pages, else "/".
func pagePath(r *http.Request) string {
	if u, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil && u.Path == "/settings" {
		return "/settings"
	}
	return "/"
}

// handleFieldChange stores a bound control's new value (see
// binding.parse). The control names the version its
// edit is based on (If-Match); a value changed since by someone else is not
// overwritten: the answer says who changed it and offers both.
func (s *Server) handleFieldChange(w http.ResponseWriter, r *http.Request) error {
	scope, key := store.Scope(chi.URLParam(r, "scope")), chi.URLParam(r, "key")
	b, ok := findBinding(scope, key)
	if !ok {
		return notFound(fmt.Sprintf("no field %q in scope %q", key, scope))
	}
	d, err := s.dict(w, r, scope)
	if err != nil {
		return err
	}
	if err := parseForm(r); err != nil {
		return err
	}
	ifVersion, err := ifMatch(r)
	if err != nil {
		return err
	}
	value, err := b.parse(r.PostForm)
	if err != nil {
		return err
	}
	e, err := d.Set(r.Context(), key, value, ifVersion)
	var conflict *store.ConflictError
	if errors.As(err, &conflict) {
		return s.renderConflict(w, r, conflict.Current)
	}
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(e.Version))
	return s.renderChange(w, r, d, setBy(scope, e), true, "Saved")
}

// renderConflict answers a bound control's change refused because someone
// changed the value first (412), with who did, and their value.
func (s *Server) renderConflict(w http.ResponseWriter, r *http.Request, current store.Entry) error {
	v, err := s.viewerOf(r.Context(), identityFrom(r))
	if err != nil {
		return err
	}
	c := views.Conflict{Who: "by someone", Version: current.Version, Theirs: displayText(current.Value)}
	if who := originView(current.Origin, current.UpdatedAt, v, time.Now()).Who(); who != "" {
		c.Who = who
	}
	if current.Version == 0 {
		c.Who, c.Theirs = "(it was deleted)", ""
	}
	w.Header().Set("ETag", etag(current.Version))
	return render(w, r, http.StatusPreconditionFailed, views.ConflictStatus(c))
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

// etag is a version as an entity tag.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch is the version a write is based on, from If-Match ("N" the key
// must be at version N; "0" it must not exist yet) or If-None-Match: * (it
// must not exist); 0 without either.
func ifMatch(r *http.Request) (int64, error) {
	if r.Header.Get("If-None-Match") == "*" {
		return store.Absent, nil
	}
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest(`If-Match is not a version this app gave (an ETag such as "42")`)
	}
	if n == 0 {
		return store.Absent, nil
	}
	return n, nil
}
