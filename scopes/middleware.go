package scopes

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// numberRequests gives each request its number.
func (s *App) numberRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, r = s.requestInfo(r)
		next.ServeHTTP(w, r)
	})
}

// logRequests logs one line per request at debug level. When that level
// is off it costs nothing.
func (s *App) logRequests(next http.Handler) http.Handler {
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		s.Logger(r.Context()).Debug("request", "method", r.Method, "path", r.URL.Path, "client", s.ClientAddr(r), "status", ww.Status(),
			"bytes", ww.BytesWritten(), "duration", time.Since(start))
	})
}

// countRequests counts each answered request by its route pattern and
// status. Without metrics it costs nothing.
func (s *App) countRequests(next http.Handler) http.Handler {
	if s.metrics == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		switch status := ww.Status(); {
		case status == http.StatusSwitchingProtocols: // a live connection: it lasts as long as its page
			s.metrics.Upgraded(route)
		case status == 0: // nothing written: net/http answers 200
			s.metrics.Request(route, r.Method, http.StatusOK, time.Since(start))
		default:
			s.metrics.Request(route, r.Method, status, time.Since(start))
		}
	})
}

// recoverPanics turns a panic into a logged 500.
func (s *App) recoverPanics(next http.Handler) http.Handler {
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
// without eval or inline code), no plugins, and forbids framing.
func (s *App) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Security-Policy"] = contentSecurityPolicy
		h["X-Frame-Options"] = deny // frame-ancestors' older form, for browsers without it
		h["X-Content-Type-Options"] = nosniff
		h["Referrer-Policy"] = sameOrigin
		s.setHSTS(w, r)
		next.ServeHTTP(w, r)
	})
}

// Header values every answer carries, made once and shared by all of them
// (net/http only reads them; Set and Add replace or copy).
var (
	contentSecurityPolicy = []string{"default-src 'self'; script-src 'self'; style-src 'self'; " +
		"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"}
	deny            = []string{"DENY"}
	nosniff         = []string{"nosniff"}
	sameOrigin      = []string{"same-origin"}
	htmlUTF8        = []string{"text/html; charset=utf-8"}
	applicationJSON = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// refuseCrossOrigin refuses writes from other origins (Go's
// CrossOriginProtection: Sec-Fetch-Site, then Origin against Host).
func (s *App) refuseCrossOrigin(next http.Handler) http.Handler {
	p := http.NewCrossOriginProtection()
	p.SetDenyHandler(s.Handle(func(http.ResponseWriter, *http.Request) error {
		return &Error{Status: http.StatusForbidden, Message: "cross-origin write refused"}
	}))
	return p.Handler(next)
}

// limitBody bounds every request body.
func (s *App) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.bodyBytes)
		next.ServeHTTP(w, r)
	})
}

// compressMin is the smallest answer worth compressing: one key's change
// (the answer to a write) is smaller, fits a packet or two, and costs more
// to compress than it saves.
const compressMin = 2 << 10

// compression compresses the pages' and the API's answers (gzip, or zstd
// when the client prefers it) for a client that accepts it. The static
// files are compressed once, in advance (package static).
func compression() (func(http.Handler) http.Handler, error) {
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(compressMin), gzhttp.CompressionLevel(gzip.BestSpeed))
	if err != nil {
		return nil, err
	}
	return func(h http.Handler) http.Handler { return wrap(h) }, nil
}
