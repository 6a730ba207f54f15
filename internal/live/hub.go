// Package live pushes what changes to the pages that show it. Each page
// holds one WebSocket. After every committed change the hub pushes, as
// out-of-band HTML that htmx swaps in by id, what that one change touched
// (its bound control, its inspector row, the key count, the counter, one
// feed item) to exactly the pages that see its scope: general to every
// page, user and browser to the same browser's pages, tab to that tab's own
// page; the page that made the change gets no echo. A change is drawn at
// most twice, whatever the number of pages: once for the browser that made
// it and once for everyone else. The hub also pushes who shares each scope
// now (presence.go) and the storage's health (health.go). One goroutine
// (run) does every read, draw and push in order, so a page never receives
// an older state after a newer one. The files follow that: the hub and its
// events here, the fan-out (fanout.go), one page's connection and outbox
// (conn.go).
package live

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/coder/websocket"
	"github.com/storagescopes/app/internal/metrics"
	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
)

// Store is what the hub reads of the storage: what a page shows of a
// stored owner, who has pages open on every instance, and the storage's
// health. A store.Store is one.
type Store interface {
	View(ctx context.Context, o store.Owner, w store.Window) (store.View, error)
	// SharePresence tells the other instances which pages this one has
	// open and returns all of them.
	SharePresence(ctx context.Context, mine store.Presence) (store.Presence, error)
	// Health is the storage's fault now, or nil.
	Health(ctx context.Context) error
}

// Clients is the client scope (a *store.Clients): what a page load shows
// of its own dictionary, which lives as long as its connections and a
// grace period.
type Clients interface {
	View(user, client string, w store.Window) store.View
	Attach(user, client string)
	Detach(user, client string)
}

// Config is what the hub needs.
type Config struct {
	Store   Store
	Clients Clients
	Heads   viewmodel.Heads // the panels' heads, to draw a page's panels from
	Log     *slog.Logger
	Metrics *metrics.Metrics // live connections, pushes and their delay; nil counts nothing
	// Stall is how long a push may wait on a page that reads nothing before
	// the page is dropped (default 30s).
	Stall time.Duration
}

// Timing of the live connections.
const (
	// livePingEvery keeps idle connections open through proxies and finds
	// dead peers.
	livePingEvery = 25 * time.Second
	// presenceEvery is how soon a page opening or closing shows in the
	// others' presence lines; presenceHeartbeat, how often this instance's
	// share is renewed (and the others' read) even when nothing changed.
	presenceEvery     = time.Second
	presenceHeartbeat = 10 * time.Second
	// healthEvery is how often the storage is asked how it is.
	healthEvery = time.Second
)

// Hub is the set of open live connections and the events waiting for them.
type Hub struct {
	store   Store
	clients Clients
	heads   viewmodel.Heads
	log     *slog.Logger
	metrics *metrics.Metrics
	stall   time.Duration

	mu      sync.Mutex
	conns   map[*conn]struct{}
	byUser  map[string]map[*conn]struct{}
	pending []event
	closed  bool
	// generalPanels are the general scope's panel as pages show it, drawn
	// once for every page that joins (or needs a fresh view) while it stays
	// at generalVersion: after a restart, thousands of pages join at once,
	// and at its limits its drawing is tens of KiB. A drawing of an older
	// version is never used; they go when the version moves on. Only run
	// uses them.
	generalPanels  map[generalPanel][]byte
	generalVersion int64
	// browsers is the latest browser-scope change of each browser that
	// has a page, whose contents are that scope whole: a page that missed
	// changes is drawn its browser panel from it (the cookie is not kept).
	browsers map[string]store.Change
	// shared is who has a page open, on every instance, as last shared;
	// presenceDirty says this instance's pages changed since.
	shared        store.Presence
	presenceDirty bool
	// fault is the storage's fault as last seen (store.FaultOf), or nil.
	fault error

	wake chan struct{} // a signal that pending has something
	quit chan struct{}
	done chan struct{}
	wg   sync.WaitGroup // the connections, until each has closed
}

// event is what run works through, in order: a connection that joins
// (and gets the state of every scope it sees), a page that missed changes
// (and gets what it shows afresh), committed changes, or who has a page
// open now.
type event struct {
	join *conn
	// drawn is what the joining page's handler drew: its browser scope (from
	// its cookie), the boot, and whether the server started again since the
	// page loaded.
	drawn    templ.Component
	refresh  *conn
	changes  []store.Change
	presence store.Presence
	// health says the storage's fault changed to fault (nil: it works).
	health bool
	fault  error
}

// New starts a hub; Close ends it. Hand its Committed to the store
// (store.Store.Subscribe).
func New(cfg Config) *Hub {
	h := &Hub{
		store:    cfg.Store,
		clients:  cfg.Clients,
		heads:    cfg.Heads,
		log:      cmp.Or(cfg.Log, slog.New(slog.DiscardHandler)),
		metrics:  cfg.Metrics,
		stall:    cmp.Or(cfg.Stall, 30*time.Second),
		conns:    map[*conn]struct{}{},
		byUser:   map[string]map[*conn]struct{}{},
		browsers: map[string]store.Change{},
		shared:   store.Presence{},
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go h.run()
	go h.sharePresence()
	go h.watchHealth()
	return h
}

// post queues an event for run, without blocking the caller (the store's
// writer calls it after each commit). After close it reports false.
func (h *Hub) post(e event) bool {
	h.mu.Lock()
	closed := h.closed
	if !closed {
		h.pending = append(h.pending, e)
	}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return !closed
}

// Committed is the store's commit hook: it queues the changes for the
// pages and returns at once.
func (h *Hub) Committed(changes []store.Change) { h.post(event{changes: changes}) }

func (h *Hub) run() {
	defer close(h.done)
	ping := time.NewTicker(livePingEvery)
	defer ping.Stop()
	for {
		select {
		case <-h.quit:
			return
		case <-ping.C:
			h.deliver("", "", "", slotPing, nil)
			continue
		case <-h.wake:
		}
		h.mu.Lock()
		events := h.pending
		h.pending = nil
		h.mu.Unlock()
		h.handle(events)
	}
}

// batch is what one run of handle reads once for all its events: each
// owner's key count.
type batch struct {
	ctx    context.Context
	counts map[store.Owner]store.View
}

// generalPanel is one drawing of the general scope's panel: a window of
// it, for the browser it is drawn for ("" for any that made none of what
// it shows).
type generalPanel struct {
	filter string
	rows   int
	viewer string
}

// generalPanelsMax bounds the drawings of the general scope the hub keeps.
const generalPanelsMax = 256

// handle works through a batch of events in order.
func (h *Hub) handle(events []event) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := &batch{ctx: ctx, counts: map[store.Owner]store.View{}}
	for _, e := range events {
		switch {
		case e.join != nil:
			h.join(b, e.join, e.drawn)
		case e.refresh != nil:
			h.refresh(b, e.refresh)
		case e.presence != nil:
			h.updatePresence(e.presence)
		case e.health:
			h.setHealth(b, e.fault)
		}
		for _, c := range e.changes {
			switch c.Op {
			case store.OpResync:
				clear(b.counts)
				h.resync(b)
			case store.OpPresence:
				h.mu.Lock()
				h.presenceDirty = true // read the others' again
				h.mu.Unlock()
			default:
				h.push(b, c)
			}
		}
	}
}

// Close ends every connection with "service restart" (1012), which makes
// the pages reconnect on their own, and waits for them, at most about
// closeWait.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.mu.Unlock()
	close(h.quit)
	<-h.done
	// run has stopped: nothing joins any more.
	h.mu.Lock()
	for c := range h.conns {
		c.cancel(errShutdown)
	}
	for _, e := range h.pending {
		if e.join != nil {
			e.join.cancel(errShutdown)
		}
	}
	h.pending = nil
	h.mu.Unlock()
	h.wg.Wait()
}

// Page is one page that opens its live connection, as its handler knows
// it.
type Page struct {
	UserID, TabID, ClientID string
	Tab                     int // the tab's number in its browser; 0 while the storage has a fault
	// Windows are what its panels show when not the first rows unfiltered
	// (nil: all do).
	Windows map[store.Scope]store.Window
	// Drawn is what the page's handler drew for it: its browser scope
	// (from its cookie), the boot, and whether the server started again
	// since the page loaded. It is sent with the page's join.
	Drawn templ.Component
}

// Join adds a page whose connection ws (on the socket raw) was just
// accepted: it is sent what it shows of every scope it sees, then every
// change. The connection lives on in its own goroutines. After Close it is
// closed at once, with "service restart".
func (h *Hub) Join(p Page, ws *websocket.Conn, raw net.Conn) {
	c := newConn(p, h.stall)
	c.ws, c.raw = ws, raw
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		ws.Close(websocket.StatusServiceRestart, "server restarting")
		return
	}
	h.wg.Add(1) // under the lock: Close waits only after no more can join
	h.mu.Unlock()
	h.clients.Attach(c.userID, c.clientID)
	c.onEnd(func() {
		h.leave(c)
		h.clients.Detach(c.userID, c.clientID)
		h.wg.Done()
	})
	if !h.post(event{join: c, drawn: p.Drawn}) {
		c.cancel(errShutdown)
	}
}
