// Package handlers is the HTTP side of the app: routes, middleware, the
// page and its fragments, the JSON API and the cookie. It is the only
// package that knows HTTP.
package handlers

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"
	"github.com/gorilla/sessions"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// Store is the persistent storage of the general, user and tab scopes:
// SQLite (*store.Store) by default, Redis (*store.Redis) for many instances.
// Both keep the same semantics; the store package's tests run one suite
// against both.
type Store interface {
	List(ctx context.Context, o store.Owner) (store.Snapshot, error)
	Get(ctx context.Context, o store.Owner, key string) (store.Entry, error)
	Apply(ctx context.Context, origin string, muts ...store.Mutation) ([]store.Entry, error)
	Delete(ctx context.Context, o store.Owner, key, origin string) error
	Clear(ctx context.Context, o store.Owner, origin string) (int, error)
	CopyTab(ctx context.Context, userID, fromTab, toTab, origin string) error
	Touch(ctx context.Context, userID, tabID string, returning bool) error
	// Subscribe sets the function told of every committed change, from this
	// process or (Redis) any other; Announce tells it of a change the store
	// does not keep (the browser scope, which lives in the cookie).
	Subscribe(fn func([]store.Change))
	Announce(ctx context.Context, c store.Change) error
	Boot() store.Boot
	Ping(ctx context.Context) error
}

// Config is what the server needs; cmd/web fills it from flags.
type Config struct {
	Store     Store
	StoreName string   // shown in the lifetime lines: "SQLite" (default) or "Redis"
	Secrets   []string // the first signs; all verify
	Logger    *slog.Logger
	Limits    Limits
	TabTTL    time.Duration // shown in the tab panel's lifetime line
	UserTTL   time.Duration // shown in the user panel's lifetime line
	// ClientGrace is how long a page's client scope outlives its live
	// connection (default 5s); ClientsPerUser caps a user's client scopes
	// (default 100).
	ClientGrace    time.Duration
	ClientsPerUser int
	// WriteRate is explicit writes per second per user (bursts of three
	// seconds' worth); 0 turns the limit off.
	WriteRate float64
}

// Server serves the app. Build it with New.
type Server struct {
	store    Store
	cookies  *sessions.CookieStore
	log      *slog.Logger
	limits   Limits
	handler  http.Handler
	live     *live
	clients  *clients
	writes   *writeLimiter          // nil: no limit
	heads    map[string]views.Panel // each scope's title and lifetime line, made once
	requests atomic.Uint64          // requests numbered so far, for the logs
}

// New builds the server and its routes.
func New(cfg Config) (*Server, error) {
	cookies, err := newCookieStore(cfg.Secrets)
	if err != nil {
		return nil, fmt.Errorf("cookie keys: %w", err)
	}
	s := &Server{
		store:   cfg.Store,
		cookies: cookies,
		log:     cfg.Logger,
		limits:  cfg.Limits.withDefaults(),
		writes:  newWriteLimiter(cfg.WriteRate),
	}
	if s.heads, err = panelHeads(cmp.Or(cfg.StoreName, "SQLite"), cfg.UserTTL, cfg.TabTTL); err != nil {
		return nil, fmt.Errorf("draw the panels: %w", err)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.clients = newClients(cmp.Or(cfg.ClientsPerUser, 100), s.limits.KeysPerOwner, cmp.Or(cfg.ClientGrace, 5*time.Second))
	s.live = newLive(s)
	s.store.Subscribe(s.live.storeCommitted)
	s.handler = s.routes()
	return s, nil
}

// Close ends the live connections (the pages reconnect on their own) and
// waits for them, about a second at most. Call it when the HTTP server
// shuts down (http.Server.RegisterOnShutdown), which does not track them.
func (s *Server) Close() { s.live.close() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// renderBuffers are render's buffers, reused: a page is 11 KiB, and growing
// a fresh buffer to that size cost a tenth of its render.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render writes c with status, buffered so that a failed render never sends
// half a page. Knowing the length, the answer goes out in one piece rather
// than chunked.
func render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) error {
	buf := renderBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 { // an outsized one is left to the collector
			buf.Reset()
			renderBuffers.Put(buf)
		}
	}()
	if err := c.Render(r.Context(), buf); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}
