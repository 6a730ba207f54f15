package scopes

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// Error is an error with a status and a message that is safe to show.
type Error struct {
	Status  int
	Message string
	// RetryAfter, in seconds, says when a fault may have passed.
	RetryAfter int
}

func (e *Error) Error() string { return e.Message }

func badRequest(msg string) *Error { return &Error{Status: http.StatusBadRequest, Message: msg} }

func notFound(msg string) *Error { return &Error{Status: http.StatusNotFound, Message: msg} }

// HandlerFunc is an http.HandlerFunc that returns its error.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adapts h: an error becomes a status and a user-safe message: an
// *Error keeps its own, the store's errors and faults get theirs (see
// asError), anything else is a 500 whose text never reaches the client. It
// answers JSON under /api/, an error page to a browser's navigation, and
// plain text (which htmx swaps in place) elsewhere. Only 5xx errors are
// logged.
func (s *App) Handle(h HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.serveError(w, r, err)
		}
	}
}

func (s *App) serveError(w http.ResponseWriter, r *http.Request, err error) {
	var conflict *store.ConflictError
	if errors.As(err, &conflict) {
		if err := s.serveConflict(w, r, conflict.Current); err != nil {
			s.Logger(r.Context()).Error("answer a conflict", "error", err)
		}
		return
	}
	e := asError(err)
	switch {
	case e.Status == http.StatusInternalServerError:
		s.Logger(r.Context()).Error("request failed", "error", err, "method", r.Method, "path", r.URL.Path)
	case e.Status >= 500: // a fault: the store logs when it starts and ends
		s.Logger(r.Context()).Debug("request refused", "error", err, "method", r.Method, "path", r.URL.Path)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case isAPI(r):
		WriteJSON(w, e.Status, map[string]string{"error": e.Message})
	case isNavigation(r):
		if Render(w, r, e.Status, views.ErrorPage(views.ErrorInfo{
			Status: e.Status, Title: http.StatusText(e.Status), Message: e.Message, RetryAfter: e.RetryAfter,
		})) == nil {
			return
		}
		fallthrough
	default: // htmx shows it in the control's status
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(e.Status)
		w.Write([]byte(e.Message))
	}
}

// isNavigation says a browser asked for a page (not htmx, not the API).
func isNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get("HX-Request") == "" && !isAPI(r)
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
	case errors.Is(err, store.ErrScopeFull):
		return &Error{Status: http.StatusRequestEntityTooLarge,
			Message: "browser storage is full: the cookie holds about 4 KiB in all; delete some keys first"}
	case errors.Is(err, store.ErrTooManyKeys):
		return &Error{Status: http.StatusTooManyRequests, Message: "too many keys in this scope: delete some first"}
	case errors.As(err, &maxBytes):
		return &Error{Status: http.StatusRequestEntityTooLarge, Message: "request body is too large"}
	case store.FaultOf(err) != nil:
		f := viewmodel.FaultOf(err)
		return &Error{Status: f.Status, RetryAfter: f.RetryAfter, Message: f.Message}
	case errors.Is(err, store.ErrClosed):
		return &Error{Status: http.StatusServiceUnavailable, Message: "the server is shutting down; try again in a moment"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Message: "the request was cancelled"}
	}
	return &Error{Status: http.StatusInternalServerError, Message: "internal error"}
}

// isAPI says whether r is a JSON API request, which answers in JSON.
func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// Logger returns the logger of a request: with its number and its user. It
// is made only when something is logged, not on every request.
func (s *App) Logger(ctx context.Context) *slog.Logger {
	info := infoFrom(ctx)
	l := s.log.With("request", info.id)
	if info.identity != nil {
		l = l.With("user", info.identity.UserID[:8])
	}
	return l
}

// WriteJSON answers v as JSON with status, as typed (<, > and & are not
// escaped: the API's values come back as they were sent).
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	h := w.Header()
	h["Content-Type"], h["Cache-Control"] = applicationJSON, noStore
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// serveConflict answers a write refused because the key was not at the
// version it named (412), with the key as it is now: JSON with its entry
// and ETag under /api/, and for a bound control who changed it, with "Take
// theirs" and "Keep mine".
func (s *App) serveConflict(w http.ResponseWriter, r *http.Request, current store.Entry) error {
	if !isAPI(r) {
		return renderConflict(w, r, current)
	}
	body := map[string]any{"error": "the key changed since the version you named (If-Match): nothing was changed"}
	if current.Version > 0 {
		w.Header().Set("ETag", ETag(current.Version))
		body["current"] = EntryJSON(r, current)
	}
	return WriteJSON(w, http.StatusPreconditionFailed, body)
}

// JSONEntry is one key as the JSON API shows it: its value and version, who
// changed it last as the asking browser may know it ("this-tab",
// "other-tab" with its tab's name, "other-browser", "api"; absent for data
// older than provenance), and when.
type JSONEntry struct {
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	Version   int64           `json:"version"`
	Origin    string          `json:"origin,omitempty"`
	TabName   string          `json:"tab_name,omitempty"`
	ChangedAt string          `json:"changed_at"`
}

// EntryJSON is e as the JSON API shows it to r's browser.
func EntryJSON(r *http.Request, e store.Entry) JSONEntry {
	o := viewmodel.Origin(e.Origin, e.UpdatedAt, Who(r).Viewer, time.Now())
	return JSONEntry{Key: e.Key, Value: e.Value, Version: e.Version, Origin: o.Kind, TabName: o.TabName,
		ChangedAt: e.UpdatedAt.UTC().Format(time.RFC3339Nano)}
}
