package handlers

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/storagescopes/app/store"
)

// The inspector of each panel: set any key to any JSON value, delete a key,
// clear the scope. Each answers like a bound control, with fresh parts.

// handleEntrySet is the inspector's form: any key to any JSON value.
func (s *Server) handleEntrySet(w http.ResponseWriter, r *http.Request) error {
	scope := store.Scope(chi.URLParam(r, "scope"))
	d, err := s.dict(w, r, scope)
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
	return s.renderUpdate(w, r, scope, d, false, fmt.Sprintf("Set %q.", key), store.OpSet, e)
}

// handleEntryDelete is the inspector's delete button.
func (s *Server) handleEntryDelete(w http.ResponseWriter, r *http.Request) error {
	scope := store.Scope(chi.URLParam(r, "scope"))
	key, err := s.keyParam(r)
	if err != nil {
		return err
	}
	d, err := s.dict(w, r, scope)
	if err != nil {
		return err
	}
	if err := d.Delete(r.Context(), key, 0); err != nil {
		return err
	}
	return s.renderUpdate(w, r, scope, d, false, fmt.Sprintf("Deleted %q.", key), store.OpDelete, store.Entry{Key: key})
}

// handleEntriesClear is the inspector's clear-all button.
func (s *Server) handleEntriesClear(w http.ResponseWriter, r *http.Request) error {
	scope := store.Scope(chi.URLParam(r, "scope"))
	d, err := s.dict(w, r, scope)
	if err != nil {
		return err
	}
	n, err := d.Clear(r.Context())
	if err != nil {
		return err
	}
	return s.renderUpdate(w, r, scope, d, false, fmt.Sprintf("Cleared %d keys.", n), store.OpClear, store.Entry{})
}
