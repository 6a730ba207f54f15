package handlers

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/storagescopes/app/store"
)

// The JSON API: the same scopes, cookie and X-Tab-ID rules as the page.

// apiEntry is one key as the API shows it.
type apiEntry struct {
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value"`
	Version int64           `json:"version"`
}

// apiDict is the dictionary of the URL's scope. The client scope lives only
// as long as a page, so the API does not offer it.
func (s *Server) apiDict(w http.ResponseWriter, r *http.Request) (dict, error) {
	scope := store.Scope(chi.URLParam(r, "scope"))
	if scope == store.Client {
		return nil, notFound(`unknown scope "client": the API serves general, user, tab or browser`)
	}
	return s.dict(w, r, scope)
}

// writeJSON answers v as JSON, values as they were stored (no \u003c for
// <: the answer is application/json with nosniff, never HTML).
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// handleAPIList answers an object of every key of the scope.
func (s *Server) handleAPIList(w http.ResponseWriter, r *http.Request) error {
	d, err := s.apiDict(w, r)
	if err != nil {
		return err
	}
	snap, err := d.List(r.Context())
	if err != nil {
		return err
	}
	out := make(map[string]json.RawMessage, len(snap.Entries))
	for _, e := range snap.Entries {
		out[e.Key] = e.Value
	}
	return writeJSON(w, http.StatusOK, out)
}

// apiKey is the URL's scope and key.
func (s *Server) apiKey(w http.ResponseWriter, r *http.Request) (dict, string, error) {
	key, err := s.keyParam(r)
	if err != nil {
		return nil, "", err
	}
	d, err := s.apiDict(w, r)
	return d, key, err
}

// handleAPIGet answers one key, or 404.
func (s *Server) handleAPIGet(w http.ResponseWriter, r *http.Request) error {
	d, key, err := s.apiKey(w, r)
	if err != nil {
		return err
	}
	e, err := d.Get(r.Context(), key)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, apiEntry{Key: e.Key, Value: e.Value, Version: e.Version})
}

// handleAPIPut stores the JSON value of the body under the key.
func (s *Server) handleAPIPut(w http.ResponseWriter, r *http.Request) error {
	d, key, err := s.apiKey(w, r)
	if err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &Error{Status: http.StatusUnsupportedMediaType, Message: "send the value as application/json"}
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err // too large: the adapter answers 413
	}
	value, err := s.limits.ParseValue(body)
	if err != nil {
		return err
	}
	e, err := d.Set(r.Context(), key, value)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, apiEntry{Key: e.Key, Value: e.Value, Version: e.Version})
}

// handleAPIDelete deletes one key, or answers 404.
func (s *Server) handleAPIDelete(w http.ResponseWriter, r *http.Request) error {
	d, key, err := s.apiKey(w, r)
	if err != nil {
		return err
	}
	if err := d.Delete(r.Context(), key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleAPIClear deletes every key of the scope.
func (s *Server) handleAPIClear(w http.ResponseWriter, r *http.Request) error {
	d, err := s.apiDict(w, r)
	if err != nil {
		return err
	}
	n, err := d.Clear(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]int{"deleted": n})
}
