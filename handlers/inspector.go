package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/scopes"
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
	id := scopes.Who(r)
	d, err := scopes.Dict(r, scope)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	filter, after := q.Get("q"), q.Get("after")
	if err := s.app.CheckFilter("the filter", filter); err != nil {
		return err
	}
	if after != "" {
		if err := s.app.Limits().CheckKey(after); err != nil {
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
	return scopes.Render(w, r, http.StatusOK, views.EntriesAnswer(l))
}

// entryKey is the URL's scope, its dictionary for id and the URL's key.
func (s *Server) entryKey(r *http.Request) (store.Scope, store.Dict, string, error) {
	scope := store.Scope(chi.URLParam(r, "scope"))
	key, err := s.app.Key(r)
	if err != nil {
		return scope, nil, "", err
	}
	d, err := scopes.Dict(r, scope)
	return scope, d, key, err
}

// handleEntryValue answers a long value whole, for its opened row.
func (s *Server) handleEntryValue(w http.ResponseWriter, r *http.Request) error {
	_, d, key, err := s.entryKey(r)
	if err != nil {
		return err
	}
	e, err := d.Get(r.Context(), key)
	if err != nil {
		return err
	}
	return scopes.Render(w, r, http.StatusOK, views.EntryValue(viewmodel.WholeValue(e.Value)))
}

// handleEntrySet is the inspector's form: any key to any JSON value.
func (s *Server) handleEntrySet(w http.ResponseWriter, r *http.Request) error {
	scope := store.Scope(chi.URLParam(r, "scope"))
	d, err := scopes.Dict(r, scope)
	if err != nil {
		return err
	}
	if err := scopes.ParseForm(r); err != nil {
		return err
	}
	key := r.PostForm.Get("key")
	if err := s.app.Limits().CheckKey(key); err != nil {
		return err
	}
	e, err := d.Set(r.Context(), key, json.RawMessage(r.PostForm.Get("value")))
	if err != nil {
		return err
	}
	return scopes.RenderChange(w, r, d, viewmodel.SetBy(scope, e), fmt.Sprintf("Set %q.", key))
}

// handleEntryDelete is the inspector's delete button.
func (s *Server) handleEntryDelete(w http.ResponseWriter, r *http.Request) error {
	id := scopes.Who(r)
	scope, d, key, err := s.entryKey(r)
	if err != nil {
		return err
	}
	version, err := d.Delete(r.Context(), key)
	if err != nil {
		return err
	}
	return scopes.RenderChange(w, r, d, viewmodel.MadeBy(id.Origin(), scope, store.OpDelete, key, version, time.Now()), fmt.Sprintf("Deleted %q.", key))
}

// handleEntriesClear is the inspector's clear-all button.
func (s *Server) handleEntriesClear(w http.ResponseWriter, r *http.Request) error {
	scope := store.Scope(chi.URLParam(r, "scope"))
	id := scopes.Who(r)
	d, err := scopes.Dict(r, scope)
	if err != nil {
		return err
	}
	n, version, err := d.Clear(r.Context())
	if err != nil {
		return err
	}
	return scopes.RenderChange(w, r, d, viewmodel.MadeBy(id.Origin(), scope, store.OpClear, "", version, time.Now()), fmt.Sprintf("Cleared %d keys.", n))
}
