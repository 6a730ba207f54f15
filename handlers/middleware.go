package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5/middleware"
)

// requestInfo is what the middleware learns about a request, under one
// context key: its number, for the logs, and once the cookie is read, who
// is asking. One key means one context (and one copy of the request) for
// both.
type requestInfo struct {
	id       uint64
	identity *identity
}

type ctxKey int

const requestInfoKey ctxKey = 0

// numberRequests gives each request its number.
func (s *Server) numberRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, r = s.requestInfo(r)
		next.ServeHTTP(w, r)
	})
}

// requestInfo returns the request's info, adding it to the request first if
// numberRequests has not.
func (s *Server) requestInfo(r *http.Request) (*requestInfo, *http.Request) {
	if info, ok := r.Context().Value(requestInfoKey).(*requestInfo); ok {
		return info, r
	}
	info := &requestInfo{id: s.requests.Add(1)}
	return info, r.WithContext(context.WithValue(r.Context(), requestInfoKey, info))
}

// infoFrom returns what is known of the request of ctx (nothing outside
// the middleware).
func infoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(requestInfoKey).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// logRequests logs one line per request at debug level. When that level
// is off it costs nothing.
func (s *Server) logRequests(next http.Handler) http.Handler {
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		s.logger(r.Context()).Debug("request", "method", r.Method, "path", r.URL.Path, "status", ww.Status(),
			"bytes", ww.BytesWritten(), "duration", time.Since(start))
	})
}

// recoverPanics turns a panic into a logged 500.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.serveError(w, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// securityHeaders allows only the app's own scripts and styles (htmx runs
// without eval or inline code) and forbids framing.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "+
			"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// refuseCrossOrigin refuses writes from other origins (Go's
// CrossOriginProtection: Sec-Fetch-Site, then Origin against Host).
func (s *Server) refuseCrossOrigin(next http.Handler) http.Handler {
	p := http.NewCrossOriginProtection()
	p.SetDenyHandler(s.handle(func(http.ResponseWriter, *http.Request) error {
		return &Error{Status: http.StatusForbidden, Message: "cross-origin write refused"}
	}))
	return p.Handler(next)
}

// limitBody bounds every request body.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, int64(s.limits.BodyBytes))
		next.ServeHTTP(w, r)
	})
}
