// Package handlers is the HTTP side of the app: routes, middleware, the
// cookie and who a request comes from, the page and its fragments, the
// inspector, the JSON API and the live connections. It is the only package
// that knows HTTP.
package handlers

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/gorilla/sessions"

	"github.com/storagescopes/app/internal/live"
	"github.com/storagescopes/app/internal/metrics"
	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
)

// Config is what the server needs; cmd/web fills it from flags.
type Config struct {
	Store     store.Store
	StoreName string   // shown in the lifetime lines: "SQLite" (default) or "Redis"
	Secrets   []string // the first signs; all verify
	Logger    *slog.Logger
	Limits    store.Limits  // the same the store was opened with
	TabTTL    time.Duration // shown in the tab panel's lifetime line
	UserTTL   time.Duration // shown in the user panel's lifetime line
	// ClientGrace is how long a page's client scope outlives its live
	// connection (default 5s).
	ClientGrace time.Duration
	// LiveStall is how long a push may wait on a page that reads nothing
	// before the page is dropped (default 30s).
	LiveStall time.Duration
	// WriteRate is explicit writes per second per user (bursts of three
	// seconds' worth); 0 turns the limit off.
	WriteRate float64
	// Demo, if set, serves the footer's Restart and Crash server buttons.
	Demo *Demo
	// Metrics counts requests, live connections and pushes; nil counts
	// nothing.
	Metrics *metrics.Metrics
	// LiveDeflate offers the live connections permessage-deflate: every
	// message is compressed for every page that takes it (no context is
	// kept between messages, which would cost each connection a
	// compressor's memory).
	LiveDeflate bool
}

// Server serves the app. Build it with New.
type Server struct {
	store     store.Store
	cookies   *sessions.CookieStore
	log       *slog.Logger
	metrics   *metrics.Metrics
	limits    store.Limits
	handler   http.Handler
	hub       *live.Hub
	liveOpts  *websocket.AcceptOptions
	clients   *store.Clients
	writes    *writeLimiter   // nil: no limit
	heads     viewmodel.Heads // each scope's title and lifetime line, made once
	requests  atomic.Uint64   // requests numbered so far, for the logs
	closeOnce sync.Once

	demo       *Demo
	restarting atomic.Bool // a demo restart is under way
}

// New builds the server and its routes.
func New(cfg Config) (*Server, error) {
	cookies, err := newCookieStore(cfg.Secrets)
	if err != nil {
		return nil, fmt.Errorf("cookie keys: %w", err)
	}
	s := &Server{
		store:    cfg.Store,
		cookies:  cookies,
		log:      cfg.Logger,
		limits:   cfg.Limits.WithDefaults(),
		writes:   newWriteLimiter(cfg.WriteRate),
		demo:     cfg.Demo,
		metrics:  cfg.Metrics,
		liveOpts: &websocket.AcceptOptions{},
	}
	if cfg.LiveDeflate {
		s.liveOpts.CompressionMode = websocket.CompressionNoContextTakeover
	}
	if s.heads, err = viewmodel.NewHeads(cmp.Or(cfg.StoreName, "SQLite"), cfg.UserTTL, cfg.TabTTL); err != nil {
		return nil, fmt.Errorf("draw the panels: %w", err)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.clients = store.NewClients(s.limits, cmp.Or(cfg.ClientGrace, 5*time.Second))
	s.hub = live.New(live.Config{Store: s.store, Clients: s.clients, Heads: s.heads, Log: s.log, Metrics: s.metrics,
		Stall: cfg.LiveStall})
	s.store.Subscribe(s.hub.Committed)
	if s.handler, err = s.routes(); err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	return s, nil
}

// Close ends the live connections (the pages reconnect on their own) and
// waits for them, about a second at most. Call it when the HTTP server
// shuts down: http.Server.Shutdown does not track hijacked connections.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.hub.Close()
		s.clients.Close()
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// handleHealth answers 200 while the storage can be read: "ok", or, when
// writes meet a fault that leaves reads working (a full disk, a lock held
// by another process), "degraded:" and why. A storage that cannot be read
// at all is a 503, so that a load balancer sends pages elsewhere.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	status, body := http.StatusOK, "ok"
	switch err := s.store.Health(r.Context()); store.FaultOf(err) {
	case nil:
		if err != nil {
			return err
		}
	case store.ErrDiskFull:
		body = "degraded: the disk is full; writes are refused until there is room, reads work"
	case store.ErrLocked:
		body = "degraded: another process holds the database's lock; writes wait for it, reads work"
	case store.ErrNoReplica:
		body = "degraded: too few replicas of the storage are connected; writes are not confirmed, reads work"
	default:
		status, body = http.StatusServiceUnavailable, "unavailable: "+viewmodel.FaultReason(err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write([]byte(body + "\n"))
	return err
}
