// Package scopes gives a Go web app the storage scopes of NiceGUI's
// app.storage, each a dictionary (store.Dict) a handler holds:
//
//	general: scopes.General(r), shared by everyone;
//	user:    scopes.User(r), one browser, by a signed and encrypted cookie;
//	browser: scopes.Browser(r), inside that cookie;
//	tab:     scopes.Tab(r), one browser tab, by an id in sessionStorage;
//	client:  scopes.Client(r), one page load, in the server's memory.
//
// A control bound to a key is one templ line: declare it once (Input,
// TextArea, Checkbox, Range, Select, Text), give it to Config.Controls, and
// draw it anywhere with @control: it shows the key's value and who set it,
// saves each change as a conditional write, says saving / saved /
// conflict, and follows the changes other pages make, live.
//
// New builds the App; App.Mount serves what the controls need (their
// endpoints, the live connection, the static files, /healthz) on a chi
// router, and App.Identify establishes who asks for the app's own routes.
// examples/seed is the seed's page written with it.
package scopes

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
	"github.com/gorilla/sessions"

	"github.com/storagescopes/app/internal/live"
	"github.com/storagescopes/app/internal/metrics"
	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/static"
	"github.com/storagescopes/app/store"
)

// Config is what an App needs: the store and the cookie's secrets at
// least.
type Config struct {
	Store     store.Store
	StoreName string // shown in the lifetime lines: "SQLite" (default) or "Redis"
	// Secrets are the cookie's: the first signs, all verify. Without any,
	// one is made once and kept in the store (Store.Secret).
	Secrets []string
	Logger  *slog.Logger
	Limits  store.Limits // the same the store was opened with
	// BodyBytes bounds a request's body (default DefaultBodyBytes).
	BodyBytes int
	// Controls are the app's bound controls: only these save and follow
	// live changes. Draw each with @control.
	Controls []Control
	TabTTL   time.Duration // shown in the tab panel's lifetime line
	UserTTL  time.Duration // shown in the user panel's lifetime line
	// ClientGrace is how long a page's client scope outlives its live
	// connection (default 5s).
	ClientGrace time.Duration
	// LiveStall is how long a push may wait on a page that reads nothing
	// before the page is dropped (default 30s).
	LiveStall time.Duration
	// WriteRate is explicit writes per second per user (bursts of three
	// seconds' worth); 0 turns the limit off.
	WriteRate float64
	// Metrics counts requests, live connections and pushes; nil counts
	// nothing.
	Metrics *metrics.Metrics
	// LiveDeflate offers the live connections permessage-deflate: every
	// message is compressed for every page that takes it (no context is
	// kept between messages, which would cost each connection a
	// compressor's memory).
	LiveDeflate bool
	// TrustedProxies are the peers whose X-Forwarded-Proto (and
	// X-Forwarded-For, for the logs) the app believes; from anyone else
	// those headers are ignored.
	TrustedProxies []netip.Prefix
	// HSTS is how long a browser that came over HTTPS is told to keep to
	// it (Strict-Transport-Security; default DefaultHSTS, negative: off).
	HSTS time.Duration
}

// DefaultBodyBytes is the documented bound of a request's body.
const DefaultBodyBytes = 64 << 10

// App serves the scopes of one store. Build it with New; Close it when the
// HTTP server shuts down.
type App struct {
	store     store.Store
	cookies   *sessions.CookieStore
	log       *slog.Logger
	metrics   *metrics.Metrics
	limits    store.Limits
	bodyBytes int64
	proxies   []netip.Prefix
	hsts      time.Duration
	hub       *live.Hub
	liveOpts  *websocket.AcceptOptions
	clients   *store.Clients
	writes    *writeLimiter   // nil: no limit
	heads     viewmodel.Heads // each scope's title and lifetime line, made once, and the controls
	compress  func(http.Handler) http.Handler
	touches   chan touch    // to the toucher (touch.go)
	closing   chan struct{} // closed by Close
	touched   chan struct{} // closed when the toucher is done
	requests  atomic.Uint64 // requests numbered so far, for the logs
	closeOnce sync.Once
}

// New builds the app: the cookie's keys, the client scope, and the live
// hub, told of every change the store commits.
func New(cfg Config) (*App, error) {
	if len(cfg.Secrets) == 0 {
		secret, _, err := cfg.Store.Secret(context.Background())
		if err != nil {
			return nil, fmt.Errorf("the cookie's secret: %w", err)
		}
		cfg.Secrets = []string{secret}
	}
	cookies, err := newCookieStore(cfg.Secrets)
	if err != nil {
		return nil, fmt.Errorf("cookie keys: %w", err)
	}
	s := &App{
		store:     cfg.Store,
		cookies:   cookies,
		log:       cfg.Logger,
		limits:    cfg.Limits.WithDefaults(),
		bodyBytes: int64(cmp.Or(cfg.BodyBytes, DefaultBodyBytes)),
		proxies:   cfg.TrustedProxies,
		hsts:      cmp.Or(cfg.HSTS, DefaultHSTS),
		writes:    newWriteLimiter(cfg.WriteRate),
		metrics:   cfg.Metrics,
		liveOpts:  &websocket.AcceptOptions{},
	}
	if cfg.LiveDeflate {
		s.liveOpts.CompressionMode = websocket.CompressionNoContextTakeover
	}
	bindings := make([]viewmodel.Binding, len(cfg.Controls))
	for i, c := range cfg.Controls {
		bindings[i] = c.b
	}
	if s.heads, err = viewmodel.NewHeads(cmp.Or(cfg.StoreName, "SQLite"), cfg.UserTTL, cfg.TabTTL, bindings); err != nil {
		return nil, fmt.Errorf("draw the panels: %w", err)
	}
	if s.compress, err = compression(); err != nil {
		return nil, err
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.clients = store.NewClients(s.limits, cmp.Or(cfg.ClientGrace, 5*time.Second))
	s.hub = live.New(live.Config{Store: s.store, Clients: s.clients, Heads: s.heads, Log: s.log, Metrics: s.metrics,
		Stall: cfg.LiveStall})
	s.store.Subscribe(s.hub.Committed)
	s.touches, s.closing, s.touched = make(chan touch, touchQueue), make(chan struct{}), make(chan struct{})
	go s.toucher()
	return s, nil
}

// Mount serves on r what the scopes need: the middleware every answer
// passes (request numbers, logs, metrics, panics, security headers), the
// static files, /healthz, the live connection (/live) and the bound
// controls' endpoints (/scopes/{scope}/fields/{key}). Call it before r has
// routes of its own; serve those inside App.Identify (and App.Compress).
func (s *App) Mount(r chi.Router) {
	r.Use(s.numberRequests, s.logRequests, s.countRequests, s.recoverPanics, s.securityHeaders)
	r.NotFound(s.Handle(func(http.ResponseWriter, *http.Request) error { return notFound("not found") }))
	r.MethodNotAllowed(s.Handle(func(http.ResponseWriter, *http.Request) error {
		return &Error{Status: http.StatusMethodNotAllowed, Message: "method not allowed"}
	}))
	r.Get("/healthz", s.Handle(s.handleHealth))
	r.Handle("/static/*", static.Handler())
	r.Group(func(r chi.Router) {
		r.Use(s.Identify)
		// The live connection of each page (a WebSocket: not compressed).
		r.Get("/live", s.Handle(s.handleLive))
		r.With(s.Compress).Get("/scopes/{scope}/fields/{key}", s.Handle(s.handleField))
		r.With(s.Compress, s.LimitWrites).Post("/scopes/{scope}/fields/{key}", s.Handle(s.handleFieldChange))
	})
}

// Compress is middleware that compresses answers for clients that accept
// it (gzip, or zstd when preferred), from compressMin bytes on.
func (s *App) Compress(next http.Handler) http.Handler { return s.compress(next) }

// Close ends the live connections (the pages reconnect on their own) and
// waits for them, about a second at most. Call it when the HTTP server
// shuts down: http.Server.Shutdown does not track hijacked connections.
func (s *App) Close() {
	s.closeOnce.Do(func() {
		s.hub.Close()
		s.clients.Close()
		close(s.closing)
		<-s.touched
	})
}

// Limits are the limits the app keeps to.
func (s *App) Limits() store.Limits { return s.limits }

// Heads are what every page of the app draws alike (the panels' heads and
// the controls), for a program that draws the demo's panels.
func (s *App) Heads() viewmodel.Heads { return s.heads }

// Presence is who has a page open now, on every instance.
func (s *App) Presence() store.Presence { return s.hub.PresenceNow() }

// Health is the fault the storage meets now, or nil.
func (s *App) Health() error { return s.hub.HealthNow() }

// handleHealth answers 200 while the storage can be read: "ok", or, when
// writes meet a fault that leaves reads working (a full disk, a lock held
// by another process), "degraded:" and why. A storage that cannot be read
// at all is a 503, so that a load balancer sends pages elsewhere.
func (s *App) handleHealth(w http.ResponseWriter, r *http.Request) error {
	status, body := http.StatusOK, "ok"
	if err := s.store.Health(r.Context()); err != nil {
		if store.FaultOf(err) == nil {
			return err
		}
		f := viewmodel.FaultOf(err)
		status, body = http.StatusOK, f.Health
		if body == "" {
			status, body = http.StatusServiceUnavailable, "unavailable: "+f.Reason
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write([]byte(body + "\n"))
	return err
}
