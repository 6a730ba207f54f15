package handlers

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/storagescopes/app/scopes"
	"github.com/storagescopes/app/store"
)

// The JSON API: the same scopes, cookie and X-Tab-ID rules as the page.

// writeEntry answers one key with status, its version as the ETag.
func writeEntry(w http.ResponseWriter, r *http.Request, status int, e store.Entry) error {
	w.Header().Set("ETag", scopes.ETag(e.Version))
	return scopes.WriteJSON(w, status, scopes.EntryJSON(r, e))
}

// apiDict is the dictionary of the URL's scope. The client scope lives only
// as long as a page, so the API does not offer it.
func (s *Server) apiDict(r *http.Request) (store.Dict, error) {
	scope := store.Scope(chi.URLParam(r, "scope"))
	if scope == store.Client {
		return nil, notFound(`unknown scope "client": the API serves general, user, tab or browser`)
	}
	return scopes.Dict(r, scope)
}

// handleAPIList answers an object of every key of the scope.
func (s *Server) handleAPIList(w http.ResponseWriter, r *http.Request) error {
	d, err := s.apiDict(r)
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
	return scopes.WriteJSON(w, http.StatusOK, out)
}

// apiKey is the URL's scope and key.
func (s *Server) apiKey(r *http.Request) (store.Dict, string, error) {
	key, err := s.app.Key(r)
	if err != nil {
		return nil, "", err
	}
	d, err := s.apiDict(r)
	return d, key, err
}

// handleAPIGet answers one key, or 404.
func (s *Server) handleAPIGet(w http.ResponseWriter, r *http.Request) error {
	d, key, err := s.apiKey(r)
	if err != nil {
		return err
	}
	e, err := d.Get(r.Context(), key)
	if err != nil {
		return err
	}
	return writeEntry(w, r, http.StatusOK, e)
}

// handleAPIPut stores the JSON value of the body under the key.
func (s *Server) handleAPIPut(w http.ResponseWriter, r *http.Request) error {
	d, key, err := s.apiKey(r)
	if err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &scopes.Error{Status: http.StatusUnsupportedMediaType, Message: "send the value as application/json"}
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err // too large: the adapter answers 413
	}
	p, err := scopes.ParsePrecondition(r.Header)
	if err != nil {
		return err
	}
	e, err := p.Set(r.Context(), d, key, json.RawMessage(body))
	if err != nil {
		return err // a precondition that failed: 412 with the key as it is
	}
	if e.Created {
		return writeEntry(w, r, http.StatusCreated, e) // RFC 9110 §9.3.4
	}
	return writeEntry(w, r, http.StatusOK, e)
}

// handleAPIDelete deletes one key, or answers 404.
func (s *Server) handleAPIDelete(w http.ResponseWriter, r *http.Request) error {
	d, key, err := s.apiKey(r)
	if err != nil {
		return err
	}
	p, err := scopes.ParsePrecondition(r.Header)
	if err != nil {
		return err
	}
	if _, err := p.Delete(r.Context(), d, key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleAPIClear deletes every key of the scope.
func (s *Server) handleAPIClear(w http.ResponseWriter, r *http.Request) error {
	d, err := s.apiDict(r)
	if err != nil {
		return err
	}
	n, _, err := d.Clear(r.Context())
	if err != nil {
		return err
	}
	return scopes.WriteJSON(w, http.StatusOK, map[string]int{"deleted": n})
}
