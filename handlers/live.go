package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"iter"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/storagescopes/app/store"
)

// Live updates: each page holds one WebSocket (GET /live). After every
// committed write the hub pushes, as out-of-band HTML that htmx morphs in by
// id, the fresh part of each changed scope to exactly the pages that see
// it: general to every page, user and browser to the same browser's pages,
// tab to that tab's own page; the page that made the change gets no echo.
// One goroutine (run) does every read, draw and push in order, so a page
// never receives an older state after a newer one. The connections
// themselves are liveconn.go's.

// How often idle connections are pinged: it keeps them open through
// proxies and finds dead peers.
const livePingEvery = 25 * time.Second

// hubFuncs are what the hub is handed to read and draw with; it knows
// nothing else of the server.
type hubFuncs struct {
	// stored reads a stored owner now and draws its part.
	stored func(ctx context.Context, o store.Owner) ([]byte, error)
	// browser draws the browser scope from the contents a change carries
	// (the cookie is not kept on the server).
	browser func(contents json.RawMessage) ([]byte, error)
	// client draws one page's client scope.
	client func(userID, clientID string) []byte
}

// hub is the set of open live connections and the events waiting for them.
type hub struct {
	funcs hubFuncs
	log   *slog.Logger

	mu      sync.Mutex
	conns   map[*liveConn]struct{}
	byUser  map[string]map[*liveConn]struct{}
	pending []hubEvent
	closed  bool

	wake chan struct{} // a signal that pending has something
	quit chan struct{}
	done chan struct{}
	wg   sync.WaitGroup // the connections, until each has closed
}

// hubEvent is what run works through, in order: a connection that joins
// (and gets the state of every scope it sees), or committed changes.
type hubEvent struct {
	join        *liveConn
	browserPart []byte // the joining page's browser scope, drawn from its cookie
	changes     []store.Change
}

func newHub(funcs hubFuncs, log *slog.Logger) *hub {
	h := &hub{
		funcs:  funcs,
		log:    log,
		conns:  map[*liveConn]struct{}{},
		byUser: map[string]map[*liveConn]struct{}{},
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go h.run()
	return h
}

// post queues an event for run, without blocking the caller (the store's
// writer calls it after each commit). After close it reports false.
func (h *hub) post(e hubEvent) bool {
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

// committed is the store's commit hook.
func (h *hub) committed(changes []store.Change) { h.post(hubEvent{changes: changes}) }

func (h *hub) run() {
	defer close(h.done)
	ping := time.NewTicker(livePingEvery)
	defer ping.Stop()
	for {
		select {
		case <-h.quit:
			return
		case <-ping.C:
			h.deliver("", "", "", partPing, nil)
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

// handle works through a batch of events: joins get their state; store
// changes are grouped by owner so that a burst of writes to one owner is
// read and drawn once.
func (h *hub) handle(events []hubEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	origins := map[store.Owner]map[string]bool{} // the pages that changed each owner
	var order []store.Owner
	flush := func() {
		for _, o := range order {
			h.pushOwner(ctx, o, origins[o])
		}
		clear(origins)
		order = order[:0]
	}
	for _, e := range events {
		if e.join != nil {
			flush() // keep the order simple: what came before, then the join
			h.join(ctx, e.join, e.browserPart)
			continue
		}
		for _, c := range e.changes {
			switch {
			case c.Op == store.OpResync:
				flush()
				h.resync(ctx)
			case c.Owner.Scope == store.Browser:
				if h.anyRecipient(c.Owner.UserID, "", c.Origin) {
					part, err := h.funcs.browser(c.Value)
					if err != nil {
						h.log.Error("live: draw a browser change", "error", err)
						continue
					}
					h.deliver(c.Owner.UserID, "", c.Origin, partBrowser, part)
				}
			default:
				if origins[c.Owner] == nil {
					if !h.anyRecipient(c.Owner.UserID, c.Owner.TabID, "") {
						continue // nobody sees this owner: nothing to gather
					}
					origins[c.Owner] = map[string]bool{}
					order = append(order, c.Owner)
				}
				origins[c.Owner][c.Origin] = true
			}
		}
	}
	flush()
}

// storedOwners are the stored scopes a page sees.
func storedOwners(c *liveConn) [3]store.Owner {
	return [3]store.Owner{store.GeneralOwner, store.UserOwner(c.userID), store.TabOwner(c.userID, c.tabID)}
}

// resync sends every page a fresh copy of the stored scopes: changes may
// have been missed.
func (h *hub) resync(ctx context.Context) {
	h.mu.Lock()
	conns := slices.Collect(maps.Keys(h.conns))
	h.mu.Unlock()
	drawn := map[store.Owner][]byte{} // general is drawn once for all
	for _, c := range conns {
		for _, o := range storedOwners(c) {
			part, ok := drawn[o]
			if !ok {
				var err error
				if part, err = h.funcs.stored(ctx, o); err != nil {
					h.log.Error("live: resync", "error", err, "owner", o.String())
					return
				}
				drawn[o] = part
			}
			h.send(c, partOf(o.Scope), part)
		}
	}
}

// pushOwner reads an owner's current state and sends it to the pages that
// see it. When every change came from one page, that page is skipped: it
// already swapped its own answer.
func (h *hub) pushOwner(ctx context.Context, o store.Owner, origins map[string]bool) {
	skip := ""
	if len(origins) == 1 {
		for origin := range origins {
			skip = origin
		}
	}
	if !h.anyRecipient(o.UserID, o.TabID, skip) {
		return // nobody to tell: no read, no render
	}
	part, err := h.funcs.stored(ctx, o)
	if err != nil {
		h.log.Error("live: read changed scope", "error", err, "owner", o.String())
		return
	}
	h.deliver(o.UserID, o.TabID, skip, partOf(o.Scope), part)
}

// recipients yields the pages of user (all pages if user is empty), of
// tab only if tab is set, except the page skip. h.mu is held.
func (h *hub) recipients(user, tab, skip string) iter.Seq[*liveConn] {
	return func(yield func(*liveConn) bool) {
		set := h.conns
		if user != "" {
			set = h.byUser[user]
		}
		for c := range set {
			if (tab == "" || c.tabID == tab) && (skip == "" || c.clientID != skip) && !yield(c) {
				return
			}
		}
	}
}

// anyRecipient reports whether deliver(user, tab, skip, …) would reach
// anyone.
func (h *hub) anyRecipient(user, tab, skip string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range h.recipients(user, tab, skip) {
		return true
	}
	return false
}

// deliver sends part p (msg) to the recipients (see recipients).
func (h *hub) deliver(user, tab, skip string, p part, msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.recipients(user, tab, skip) {
		h.send(c, p, msg)
	}
}

// send hands c a part; a page that stopped reading is dropped (it
// reconnects, if it is still there, and gets the current state).
func (h *hub) send(c *liveConn, p part, msg []byte) {
	if !c.send(p, msg) && c.ctx.Err() == nil {
		h.log.Warn("live: dropped a page that stopped reading", "user", c.userID[:min(8, len(c.userID))], "stalled", c.stall)
		c.cancel(errStalled)
	}
}

// join sends a new connection the current state of every scope it sees, in
// one message, then adds it to the set, so every later push comes after
// that state.
func (h *hub) join(ctx context.Context, c *liveConn, browserPart []byte) {
	if c.ctx.Err() != nil {
		return // gone before its turn: nothing to draw, nobody to add
	}
	var state bytes.Buffer
	for _, o := range storedOwners(c) {
		part, err := h.funcs.stored(ctx, o)
		if err != nil {
			h.log.Error("live: snapshot", "error", err, "owner", o.String())
			c.cancel(err)
			return
		}
		state.Write(part)
	}
	state.Write(browserPart)
	state.Write(h.funcs.client(c.userID, c.clientID))
	c.send(partJoin, state.Bytes()) // the outbox is empty: this always fits

	h.mu.Lock()
	defer h.mu.Unlock()
	// Its end runs leave, which may have run already (then c would stay
	// forever) or waits for h.mu (then it removes c).
	if c.ctx.Err() != nil {
		return
	}
	h.conns[c] = struct{}{}
	if h.byUser[c.userID] == nil {
		h.byUser[c.userID] = map[*liveConn]struct{}{}
	}
	h.byUser[c.userID][c] = struct{}{}
}

func (h *hub) leave(c *liveConn) {
	h.mu.Lock()
	delete(h.conns, c)
	if m := h.byUser[c.userID]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(h.byUser, c.userID)
		}
	}
	h.mu.Unlock()
}

// close ends every connection with "service restart" (1012), which makes
// the pages reconnect on their own, and waits for them, at most about
// liveCloseWait.
func (h *hub) close() {
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

// handleLive upgrades to the page's live connection. The user comes from
// the cookie, never from the URL; the origin is checked by Accept. The
// handler returns at once: the connection lives on in its own goroutines,
// and the request (headers, contexts, the HTTP server's goroutine) is freed.
func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	tab, err := checkUUID("tab parameter (the tab id)", q.Get("tab"))
	if err != nil {
		return err
	}
	client, err := checkUUID("client parameter (the page-load id)", q.Get("client"))
	if err != nil {
		return err
	}
	id := identityFrom(r)
	browserPart := s.drawPart(store.Browser, browserScope(id).list())

	var raw net.Conn
	ws, err := websocket.Accept(smallBuffers{w, &raw}, r, nil)
	if err != nil {
		return nil // Accept has answered (e.g. 403 for a foreign origin)
	}
	h := s.hub
	c := newLiveConn(id.UserID, tab, client, ws, raw, s.liveStall)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		ws.Close(websocket.StatusServiceRestart, "server restarting")
		return nil
	}
	h.wg.Add(1) // under the lock: close waits only after no more can join
	h.mu.Unlock()
	s.clients.attach(c.userID, c.clientID)
	c.onEnd(func() {
		h.leave(c)
		s.clients.detach(c.userID, c.clientID)
		h.wg.Done()
	})
	if !h.post(hubEvent{join: c, browserPart: browserPart}) {
		c.cancel(errShutdown)
	}
	return nil
}
