package handlers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// Live updates: each page holds one WebSocket (GET /live). After every
// committed write the server pushes, as out-of-band HTML that htmx morphs
// in by id, fresh copies of what changed to exactly the pages that should
// see it: general to every page, user and browser to the same browser's
// pages, tab to that tab's own page; the page that made the change gets no
// echo. One goroutine (run) does every snapshot and every push in order, so
// a page never receives an older state after a newer one.

// Tuning of the live connections.
const (
	liveQueue     = 16               // messages a connection may fall behind before it is dropped
	livePingEvery = 25 * time.Second // keeps idle connections open through proxies, finds dead peers
	livePingWait  = 10 * time.Second // a pong that takes longer means a dead peer
	liveCloseWait = time.Second      // how long shutdown waits for close handshakes
)

// live is the set of open live connections and the pushes waiting for them.
type live struct {
	s *Server

	mu      sync.Mutex
	conns   map[*liveConn]struct{}
	byUser  map[string]map[*liveConn]struct{}
	pending []liveEvent
	closed  bool

	wake chan struct{} // a signal that pending has something
	quit chan struct{}
	done chan struct{}
	wg   sync.WaitGroup // the connections' goroutines
}

// liveConn is one page's connection. It is small on purpose: an idle page
// costs only this, the socket's small buffers and the WebSocket library's
// parked reader goroutine. A writer goroutine exists only while there is
// something to send.
type liveConn struct {
	userID, tabID, clientID string
	ws                      *websocket.Conn
	raw                     net.Conn        // the socket under ws
	ctx                     context.Context // ends when the connection must end
	cancel                  context.CancelCauseFunc

	mu      sync.Mutex
	queue   [][]byte // a nil message asks for a ping
	writing bool     // a flush goroutine is running
}

// liveEvent is what run works through, in order: a connection that joins
// (and gets a snapshot), or committed changes (a browser-scope change
// carries the new contents, as the cookie is not kept on the server).
type liveEvent struct {
	join    *liveConn
	browser store.Snapshot // the join's browser scope
	changes []store.Change
}

// Why a connection ends.
var (
	errSlow     = errors.New("client fell behind")
	errShutdown = errors.New("server shutting down")
	errGone     = errors.New("connection lost")
)

func newLive(s *Server) *live {
	l := &live{
		s:      s,
		conns:  map[*liveConn]struct{}{},
		byUser: map[string]map[*liveConn]struct{}{},
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go l.run()
	return l
}

// post queues an event for run, without blocking the caller (the store's
// writer calls it after each commit). After close it reports false.
func (l *live) post(e liveEvent) bool {
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.pending = append(l.pending, e)
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return !closed
}

// storeCommitted is the store's commit hook.
func (l *live) storeCommitted(changes []store.Change) {
	l.post(liveEvent{changes: changes})
}

func (l *live) run() {
	defer close(l.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastPing := time.Now()
	for {
		select {
		case <-l.quit:
			return
		case now := <-tick.C:
			l.s.clients.sweep(now)
			if now.Sub(lastPing) >= livePingEvery {
				lastPing = now
				l.deliver("", "", "", nil) // nil asks each connection to ping
			}
			continue
		case <-l.wake:
		}
		l.mu.Lock()
		events := l.pending
		l.pending = nil
		l.mu.Unlock()
		l.handle(events)
	}
}

// handle works through a batch of events: joins get their snapshot; store
// changes are grouped by owner so that a burst of writes to one owner is
// read and drawn once.
func (l *live) handle(events []liveEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	origins := map[store.Owner]map[string]bool{} // the pages that changed each owner
	var order []store.Owner
	flush := func() {
		for _, o := range order {
			l.pushOwner(ctx, o, origins[o])
		}
		clear(origins)
		order = order[:0]
	}
	for _, e := range events {
		switch {
		case e.join != nil:
			flush() // changes before the join are already in its snapshot, but keep order simple
			l.join(ctx, e.join, e.browser)
		default:
			for _, c := range e.changes {
				switch {
				case c.Op == store.OpResync:
					flush()
					l.resync(ctx)
					continue
				case c.Owner.Scope == store.Browser:
					if l.anyRecipient(c.Owner.UserID, "", c.Origin) {
						var m memKV
						if err := json.Unmarshal(c.Value, &m); err != nil {
							l.s.log.Error("live: read a browser change", "error", err)
							continue
						}
						l.deliver(c.Owner.UserID, "", c.Origin, l.s.draw(scopeBrowser, m.list()))
					}
					continue
				}
				if origins[c.Owner] == nil {
					if !l.anyRecipient(c.Owner.UserID, c.Owner.TabID, "") {
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

// resync sends every page a fresh copy of the stored scopes: changes may
// have been missed.
func (l *live) resync(ctx context.Context) {
	l.mu.Lock()
	conns := slices.Collect(maps.Keys(l.conns))
	l.mu.Unlock()
	drawn := map[store.Owner][]byte{} // general is drawn once for all
	for _, c := range conns {
		msg, err := l.stored(ctx, c, drawn)
		if err != nil {
			l.s.log.Error("live: resync", "error", err)
			return
		}
		if !c.send(msg) {
			c.cancel(errSlow)
		}
	}
}

// stored draws the stored scopes a page sees (general, its user, its tab),
// reusing and filling drawn.
func (l *live) stored(ctx context.Context, c *liveConn, drawn map[store.Owner][]byte) ([]byte, error) {
	var msg bytes.Buffer
	for _, o := range []store.Owner{store.GeneralOwner, store.UserOwner(c.userID), store.TabOwner(c.userID, c.tabID)} {
		part, ok := drawn[o]
		if !ok {
			snap, err := l.s.store.List(ctx, o)
			if err != nil {
				return nil, err
			}
			part = l.s.draw(string(o.Scope), snap)
			drawn[o] = part
		}
		msg.Write(part)
	}
	return msg.Bytes(), nil
}

// pushOwner reads an owner's current state and sends it to the pages that
// see it. When every change came from one page, that page is skipped: it
// already swapped its own answer.
func (l *live) pushOwner(ctx context.Context, o store.Owner, origins map[string]bool) {
	skip := ""
	if len(origins) == 1 {
		for origin := range origins {
			skip = origin
		}
	}
	user, tab := o.UserID, o.TabID
	if !l.anyRecipient(user, tab, skip) {
		return // nobody to tell: no read, no render
	}
	snap, err := l.s.store.List(ctx, o)
	if err != nil {
		l.s.log.Error("live: read changed scope", "error", err, "owner", o.String())
		return
	}
	l.deliver(user, tab, skip, l.s.draw(string(o.Scope), snap))
}

// recipients yields the pages of user (all pages if user is empty), of
// tab only if tab is set, except the page skip. l.mu is held.
func (l *live) recipients(user, tab, skip string) iter.Seq[*liveConn] {
	return func(yield func(*liveConn) bool) {
		set := l.conns
		if user != "" {
			set = l.byUser[user]
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
func (l *live) anyRecipient(user, tab, skip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range l.recipients(user, tab, skip) {
		return true
	}
	return false
}

// deliver queues msg for the recipients (see recipients). A page whose
// queue is full is dropped: it reconnects and gets a snapshot.
func (l *live) deliver(user, tab, skip string, msg []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.recipients(user, tab, skip) {
		if !c.send(msg) {
			c.cancel(errSlow)
		}
	}
}

// join sends a new connection the current state of every scope it sees,
// then adds it to the set, so every later push comes after the snapshot.
func (l *live) join(ctx context.Context, c *liveConn, browser store.Snapshot) {
	if c.ctx.Err() != nil {
		return // gone before its turn: nothing to draw, nobody to add
	}
	stored, err := l.stored(ctx, c, map[store.Owner][]byte{})
	if err != nil {
		l.s.log.Error("live: snapshot", "error", err)
		c.cancel(err)
		return
	}
	snapshot := bytes.NewBuffer(stored)
	snapshot.Write(l.s.draw(scopeBrowser, browser))
	client, _ := l.s.clients.dict(c.userID, c.clientID).List(ctx)
	snapshot.Write(l.s.draw(scopeClient, client))
	c.send(snapshot.Bytes()) // the queue is empty: this always fits

	l.mu.Lock()
	defer l.mu.Unlock()
	// Its end runs leave, which may have run already (then c would stay
	// forever) or waits for l.mu (then it removes c).
	if c.ctx.Err() != nil {
		return
	}
	l.conns[c] = struct{}{}
	if l.byUser[c.userID] == nil {
		l.byUser[c.userID] = map[*liveConn]struct{}{}
	}
	l.byUser[c.userID][c] = struct{}{}
}

func (l *live) leave(c *liveConn) {
	l.mu.Lock()
	delete(l.conns, c)
	if m := l.byUser[c.userID]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(l.byUser, c.userID)
		}
	}
	l.mu.Unlock()
}

// close ends every connection with "service restart" (1012), which makes
// the pages reconnect on their own, and waits for them, at most about
// liveCloseWait.
func (l *live) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.quit)
	<-l.done
	// run has stopped: nothing joins any more.
	l.mu.Lock()
	for c := range l.conns {
		c.cancel(errShutdown)
	}
	for _, e := range l.pending {
		if e.join != nil {
			e.join.cancel(errShutdown)
		}
	}
	l.pending = nil
	l.mu.Unlock()
	l.wg.Wait()
}

// handleLive upgrades to the page's live connection. The user comes from
// the cookie, never from the URL; the origin is checked by Accept. The
// handler returns at once: the connection lives on in its own goroutine,
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
	browser, _ := (&cookieDict{id: id}).List(r.Context())

	var raw net.Conn
	ws, err := websocket.Accept(smallBuffers{w, &raw}, r, nil)
	if err != nil {
		return nil // Accept has answered (e.g. 403 for a foreign origin)
	}
	l := s.live
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &liveConn{userID: id.UserID, tabID: tab, clientID: client, ws: ws, raw: raw, ctx: ctx, cancel: cancel}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		ws.Close(websocket.StatusServiceRestart, "server restarting")
		return nil
	}
	l.wg.Add(1) // under the lock: close waits only after no more can join
	l.mu.Unlock()
	s.clients.attach(c.userID, c.clientID)

	// No goroutine waits for the end: the library's reader answers pings and
	// close frames and ends when the page goes away, which ends c.ctx; the
	// end of c.ctx (for any reason) closes and forgets the connection.
	readCtx := ws.CloseRead(context.Background())
	context.AfterFunc(readCtx, func() { c.cancel(errGone) })
	context.AfterFunc(ctx, func() {
		c.closeWith(context.Cause(ctx))
		l.leave(c)
		s.clients.detach(c.userID, c.clientID)
		l.wg.Done()
	})
	if !l.post(liveEvent{join: c, browser: browser}) {
		c.cancel(errShutdown)
	}
	return nil
}

// Each live connection's buffers. The HTTP server's are 4 KiB each, most
// of an idle connection's memory. A page sends almost nothing (pongs, a
// close frame), so the read buffer is small; a push is one frame of a few
// KiB, and a write buffer that holds it whole sends it in one write call
// (measured: p99 fan-out delivery 118 ms with 1 KiB, 90 ms with 4 KiB).
const (
	liveReadBuffer  = 512
	liveWriteBuffer = 4096
)

// smallBuffers hands the WebSocket library the hijacked connection with
// small buffers instead of the HTTP server's, and keeps the socket in raw.
type smallBuffers struct {
	http.ResponseWriter
	raw *net.Conn
}

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	*w.raw = conn
	var r io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 { // bytes the client sent early
		early, _ := brw.Reader.Peek(n)
		r = io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn)
	}
	return conn, bufio.NewReadWriter(bufio.NewReaderSize(r, liveReadBuffer), bufio.NewWriterSize(conn, liveWriteBuffer)), nil
}

// send queues msg for the page and starts a writer if none is running. It
// reports false when the page has fallen too far behind.
func (c *liveConn) send(msg []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) >= liveQueue {
		return false
	}
	c.queue = append(c.queue, msg)
	if !c.writing {
		c.writing = true
		go c.flush()
	}
	return true
}

// flush writes the queue until it is empty. Writes carry no context that
// can end (that costs a registration per write): a page that stops reading
// fills its queue and is dropped, and closing the socket ends the write.
func (c *liveConn) flush() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.ctx.Err() != nil {
			c.queue, c.writing = nil, false
			c.mu.Unlock()
			return
		}
		msg := c.queue[0]
		c.queue = c.queue[1:]
		c.mu.Unlock()

		var err error
		if msg == nil {
			ctx, cancel := context.WithTimeout(c.ctx, livePingWait)
			err = c.ws.Ping(ctx)
			cancel()
		} else {
			err = c.ws.Write(context.Background(), websocket.MessageText, msg)
		}
		if err != nil {
			c.cancel(errGone)
		}
	}
}

// closeWith ends the connection with a code that tells the page to
// reconnect (and so to get a fresh snapshot).
func (c *liveConn) closeWith(cause error) {
	code, reason := websocket.StatusGoingAway, "closing"
	switch {
	case errors.Is(cause, errGone):
		c.ws.CloseNow()
		return
	case errors.Is(cause, errShutdown):
		code, reason = websocket.StatusServiceRestart, "server restarting"
	case errors.Is(cause, errSlow):
		code, reason = websocket.StatusTryAgainLater, "fell behind; reconnect for a snapshot"
	}
	done := make(chan struct{})
	go func() {
		c.ws.Close(code, reason)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(liveCloseWait):
		// The page did not answer the close: drop the socket, which ends
		// the handshake and the library's reader at once.
		c.raw.Close()
		<-done
	}
}

// draw renders the out-of-band update of one scope from its snapshot.
func (s *Server) draw(scope string, snap store.Snapshot) []byte {
	u := views.Update{Panel: s.panel(scope, snap)}
	if scope == scopeUser {
		name := greetingName(snap.Entries)
		u.Name = &name
	}
	var buf bytes.Buffer
	if err := views.Pushed(u).Render(context.Background(), &buf); err != nil {
		s.log.Error("live: render", "error", err)
	}
	return buf.Bytes()
}
