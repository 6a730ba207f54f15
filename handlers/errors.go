package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/storagescopes/app/store"
)

// Error is an error with a status and a message that is safe to show.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func badRequest(msg string) *Error { return &Error{Status: http.StatusBadRequest, Message: msg} }

func notFound(msg string) *Error { return &Error{Status: http.StatusNotFound, Message: msg} }

// handlerFunc is an http.HandlerFunc that returns its error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts h: an error becomes a status and a user-safe message, as
// JSON under /api/ and as plain text (which htmx swaps in place) elsewhere.
// Only 5xx errors are logged; their text never reaches the client.
func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.serveError(w, r, err)
		}
	}
}

func (s *Server) serveError(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	if e.Status >= 500 {
		s.logger(r.Context()).Error("request failed", "error", err, "method", r.Method, "path", r.URL.Path)
	}
	if isAPI(r) {
		writeJSON(w, e.Status, map[string]string{"error": e.Message})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(e.Status)
	w.Write([]byte(e.Message))
}

// asError maps any error to an *Error: application errors keep their
// status, store errors get theirs, anything else is a 500.
func asError(err error) *Error {
	var e *Error
	var invalid *store.InvalidError
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &invalid):
		if invalid.TooLarge {
			return &Error{Status: http.StatusRequestEntityTooLarge, Message: invalid.Message}
		}
		return badRequest(invalid.Message)
	case errors.Is(err, store.ErrNotFound):
		return notFound("no such key")
	case errors.Is(err, store.ErrTooManyKeys):
		return &Error{Status: http.StatusTooManyRequests, Message: "too many keys in this scope: delete some first"}
	case errors.As(err, &maxBytes):
		return &Error{Status: http.StatusRequestEntityTooLarge, Message: "request body is too large"}
	case errors.Is(err, store.ErrClosed):
		return &Error{Status: http.StatusServiceUnavailable, Message: "the server is shutting down; try again in a moment"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Message: "the request was cancelled"}
	}
	return &Error{Status: http.StatusInternalServerError, Message: "internal error"}
}

// logger returns the logger of a request: with its number and its user. It
// is made only when something is logged, not on every request.
func (s *Server) logger(ctx context.Context) *slog.Logger {
	info := infoFrom(ctx)
	l := s.log.With("request", info.id)
	if info.identity != nil {
		l = l.With("user", info.identity.UserID[:8])
	}
	return l
}
