package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
	checkbox   bool
}

// bindings are the page's bound controls, in the order they are drawn.
var bindings = []binding{
	{store.General, "global_text", "Global Message", false},
	{store.User, "username", "Your name", false},
	{store.User, "user_note", "Your Persistent Note", false},
	{store.User, "dark_mode", "Dark Mode", true},
	{store.Browser, "browser_note", "Browser", false},
	{store.Tab, "tab_data", "Tab-Specific Data", false},
	{store.Client, "client_note", "Client", false},
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
		browser, err := s.dict(w, r, store.Browser)
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
			if scope == store.Tab || scope == store.Client { // they load themselves
				p := s.heads[scope]
				p.Lazy = true
				page.Panels = append(page.Panels, p)
				continue
			}
			d := browser // already made, and already counted in
			if scope != store.Browser {
				if d, err = s.dict(w, r, scope); err != nil {
					return err
				}
			}
			snap, err := d.List(ctx)
			if err != nil {
				return err
			}
			if scope == store.User {
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
	scope := store.Scope(chi.URLParam(r, "scope"))
	if scope != store.Tab && scope != store.Client {
		return notFound(fmt.Sprintf("scope %q has no lazy panel", scope))
	}
	d, err := s.dict(w, r, scope)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if from := r.Header.Get(headerCopyFrom); from != "" && scope == store.Tab {
		from, err := checkUUID("X-Tab-Copy-From header", from)
		if err != nil {
			return err
		}
		id := identityFrom(r)
		err = s.store.CopyTab(ctx, id.UserID, from, id.TabID, id.ClientID)
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
	var value json.RawMessage
	if b.checkbox {
		value = mustJSON(r.PostForm.Has("value"))
	} else {
		text := r.PostForm.Get("value")
		if !utf8.ValidString(text) {
			return badRequest("value is not valid UTF-8")
		}
		// A string the server encodes itself is valid JSON: only its size
		// is checked (by the store).
		value = mustJSON(text)
	}
	if _, err := d.Set(r.Context(), key, value); err != nil {
		return err
	}
	return s.renderUpdate(w, r, scope, d, true, "Saved")
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
