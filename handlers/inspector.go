package handlers

import (
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// The inspector of each panel: its rows, a window at a time (a filter,
// "Show more"), a long value whole when its row opens; set any key to any
// JSON value, delete a key, clear the scope. Each change answers with what
// it changed, as a live push would.

// handleEntries answers the inspector's filter (?q=, the rows from the
// first) and its "Show more" (?after=, the rows after the last one shown).
func (s *Server) handleEntries(w http.ResponseWriter, r *http.Request) error {
	scope := store.Scope(chi.URLParam(r, "scope"))
	id := identityFrom(r)
	d, err := s.dictionaryFor(w, r, id, scope)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	filter, after := q.Get("q"), q.Get("after")
	if err := s.checkFilter("the filter", filter); err != nil {
		return err
	}
	if after != "" {
		if err := s.limits.CheckKey(after); err != nil {
			return badRequest("after must be a key: " + err.Error())
		}
	}
	ctx := r.Context()
	view, err := d.View(ctx, store.Window{Filter: filter, After: after, Limit: viewmodel.InspectorRows})
	if err != nil {
		return err
	}
	l := viewmodel.InspectorList(scope, view, filter, id.Viewer, time.Now())
	l.Append = after != ""
	return render(w, r, http.StatusOK, views.EntriesAnswer(l))
}

// checkFilter refuses an inspector's filter (named name in the message)
// that no key could contain: not text, or longer than a key.
func (s *Server) checkFilter(name, filter string) error {
	if !utf8.ValidString(filter) || utf8.RuneCountInString(filter) > s.limits.KeyRunes {
		return badRequest(fmt.Sprintf("%s must be valid text of at most %d characters", name, s.limits.KeyRunes))
	}
	return nil
}

// entryKey is the URL's scope, its dictionary for id and the URL's key.
func (s *Server) entryKey(w http.ResponseWriter, r *http.Request, id *identity) (store.Scope, dictionary, string, error) {
	scope := store.Scope(chi.URLParam(r, "scope"))
	key, err := s.keyParam(r)
	if err != nil {
		return scope, nil, "", err
	}
	d, err := s.dictionaryFor(w, r, id, scope)
	return scope, d, key, err
}

// handleEntryValue answers a long value whole, for its opened row.
func (s *Server) handleEntryValue(w http.ResponseWriter, r *http.Request) error {
	_, d, key, err := s.entryKey(w, r, identityFrom(r))
	if err != nil {
		return err
	}
	e, err := d.Get(r.Context(), key)
	if err != nil {
		return err
	}
	return render(w, r, http.StatusOK, views.EntryValue(viewmodel.WholeValue(e.Value)))
}

// handleEntrySet is the inspector's form: any key to any JSON value.
func (s *Server) handleEntrySet(w http.ResponseWriter, r *http.Request) error {
	scope := store.Scope(chi.URLParam(r, "scope"))
	id := identityFrom(r)
	d, err := s.dictionaryFor(w, r, id, scope)
	if err != nil {
		return err
	}
	if err := parseForm(r); err != nil {
		return err
	}
	key := r.PostForm.Get("key")
	if err := s.limits.CheckKey(key); err != nil {
		return err
	}
	value, err := s.limits.ParseValue([]byte(r.PostForm.Get("value")))
	if err != nil {
		return err
	}
	e, err := d.Set(r.Context(), key, value, 0)
	if err != nil {
		return err
	}
	return renderChange(w, r, id, d, viewmodel.SetBy(scope, e), false, fmt.Sprintf("Set %q.", key))
}

// handleEntryDelete is the inspector's delete button.
func (s *Server) handleEntryDelete(w http.ResponseWriter, r *http.Request) error {
	id := identityFrom(r)
	scope, d, key, err := s.entryKey(w, r, id)
	if err != nil {
		return err
	}
	version, err := d.Delete(r.Context(), key, 0)
	if err != nil {
		return err
	}
	return renderChange(w, r, id, d, viewmodel.MadeBy(originOf(id), scope, store.OpDelete, key, version, time.Now()), false, fmt.Sprintf("Deleted %q.", key))
}

// handleEntriesClear is the inspector's clear-all button.
func (s *Server) handleEntriesClear(w http.ResponseWriter, r *http.Request) error {
	scope := store.Scope(chi.URLParam(r, "scope"))
	id := identityFrom(r)
	d, err := s.dictionaryFor(w, r, id, scope)
	if err != nil {
		return err
	}
	n, version, err := d.Clear(r.Context())
	if err != nil {
		return err
	}
	return renderChange(w, r, id, d, viewmodel.MadeBy(originOf(id), scope, store.OpClear, "", version, time.Now()), false, fmt.Sprintf("Cleared %d keys.", n))
}
