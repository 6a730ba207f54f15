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
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/storagescopes/app/internal/metrics"
	"github.com/storagescopes/app/store"
)

// Live updates: each page holds one WebSocket (GET /live). After every
// committed write the hub pushes, as out-of-band HTML that htmx morphs in by
// id, the fresh part of each changed scope to exactly the pages that see
// it: general to every page, user and browser to the same browser's pages,
// tab to that tab's own page; the page that made the change gets no echo.
// It also pushes who shares each scope now. One goroutine (run) does every
// read, draw and push in order, so a page never receives an older state
// after a newer one. The connections themselves are liveconn.go's.

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
	// recentMax is how many changes of one owner the hub keeps for the
	// feeds of the pages that see it.
	recentMax = 20
)

// hubFuncs are what the hub is handed to read and draw with; it knows
// nothing else of the server.
type hubFuncs struct {
	// read reads a stored owner now.
	read func(ctx context.Context, o store.Owner) (store.Snapshot, error)
	// browser reads the browser scope from the contents a change carries
	// (the cookie is not kept on the server).
	browser func(userID string, contents json.RawMessage) (store.Snapshot, error)
	// client reads one page's client scope.
	client func(userID, clientID string) store.Snapshot
	// draw draws a scope's part as v sees it, with its recent changes.
	draw func(scope store.Scope, snap store.Snapshot, v viewer, recent []store.Change) []byte
	// presence draws a scope's presence line as v sees it.
	presence func(scope store.Scope, p store.Presence, v viewer) []byte
	// share tells the other instances which pages this one has open and
	// returns all of them (store.Store.SharePresence).
	share func(ctx context.Context, mine store.Presence) (store.Presence, error)
	// health is the storage's fault now, or nil (store.Store.Health).
	health func(ctx context.Context) error
	// drawHealth draws the live indicator's storage state.
	drawHealth func(fault error) []byte
}

// hub is the set of open live connections and the events waiting for them.
type hub struct {
	funcs   hubFuncs
	log     *slog.Logger
	metrics *metrics.Metrics // live connections, pushes and their delay

	mu      sync.Mutex
	conns   map[*liveConn]struct{}
	byUser  map[string]map[*liveConn]struct{}
	pending []hubEvent
	closed  bool
	// recent are the latest changes of each owner that has a page, for
	// their feeds.
	recent map[store.Owner][]store.Change
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

// hubEvent is what run works through, in order: a connection that joins
// (and gets the state of every scope it sees), committed changes, or who
// has a page open now.
type hubEvent struct {
	join *liveConn
	// drawn is what the joining page's handler drew: its browser scope (from
	// its cookie), the boot, and whether the server started again since the
	// page loaded.
	drawn    []byte
	changes  []store.Change
	presence store.Presence
	// health says the storage's fault changed to fault (nil: it works).
	health bool
	fault  error
}

func newHub(funcs hubFuncs, log *slog.Logger, m *metrics.Metrics) *hub {
	h := &hub{
		funcs:   funcs,
		log:     log,
		metrics: m,
		conns:   map[*liveConn]struct{}{},
		byUser:  map[string]map[*liveConn]struct{}{},
		recent:  map[store.Owner][]store.Change{},
		shared:  store.Presence{},
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go h.run()
	go h.sharePresence()
	go h.watchHealth()
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
	since := map[store.Owner]int64{}             // when its first change committed
	var order []store.Owner
	flush := func() {
		for _, o := range order {
			h.pushOwner(ctx, o, origins[o], since[o])
		}
		clear(origins)
		clear(since)
		order = order[:0]
	}
	for _, e := range events {
		switch {
		case e.join != nil:
			flush() // keep the order simple: what came before, then the join
			h.join(ctx, e.join, e.drawn)
			continue
		case e.presence != nil:
			h.updatePresence(e.presence)
			continue
		case e.health:
			flush()
			h.setHealth(ctx, e.fault)
			continue
		}
		for _, c := range e.changes {
			switch {
			case c.Op == store.OpResync:
				flush()
				h.resync(ctx)
			case c.Op == store.OpPresence:
				h.mu.Lock()
				h.presenceDirty = true // read the others' again
				h.mu.Unlock()
			case c.Owner.Scope == store.Browser:
				h.pushBrowser(c)
			default:
				if origins[c.Owner] == nil {
					if !h.anyRecipient(c.Owner.UserID, c.Owner.TabID, "") {
						continue // nobody sees this owner: nothing to gather
					}
					origins[c.Owner] = map[string]bool{}
					since[c.Owner] = c.At
					order = append(order, c.Owner)
				}
				origins[c.Owner][c.Origin.ClientID] = true
				h.remember(c)
			}
		}
	}
	flush()
}

// remember keeps c among its owner's recent changes, without a large value.
func (h *hub) remember(c store.Change) {
	if len(c.Value) > 256 {
		c.Value = nil // the feed shows an excerpt; the snapshot has the value
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r := append(h.recent[c.Owner], c)
	if len(r) > recentMax {
		r = slices.Delete(r, 0, len(r)-recentMax)
	}
	h.recent[c.Owner] = r
}

func (h *hub) recentOf(o store.Owner) []store.Change {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.recent[o])
}

// storedOwners are the stored scopes a page sees.
func storedOwners(c *liveConn) [3]store.Owner {
	return [3]store.Owner{store.GeneralOwner, store.UserOwner(c.userID), store.TabOwner(c.userID, c.tabID)}
}

// viewerFor is who c is to a part: its browser and tab when that browser
// made any of what the part shows, else anyone (one drawing serves every
// page to which all of it is someone else's).
func viewerFor(c *liveConn, authors map[string]bool) viewer {
	if authors[c.userID] {
		return viewer{UserID: c.userID, Tab: c.tab}
	}
	return viewer{}
}

// authorsOf are the browsers that made what a snapshot and its recent
// changes show.
func authorsOf(snap store.Snapshot, recent []store.Change) map[string]bool {
	a := map[string]bool{}
	for _, e := range snap.Entries {
		a[e.Origin.UserID] = true
	}
	for _, c := range recent {
		a[c.Origin.UserID] = true
	}
	return a
}

// drawings draws one part once per kind of viewer among conns.
type drawings struct {
	scope   store.Scope
	snap    store.Snapshot
	recent  []store.Change
	authors map[string]bool
	drawn   map[viewer][]byte
	draw    func(scope store.Scope, snap store.Snapshot, v viewer, recent []store.Change) []byte
}

func (h *hub) drawings(scope store.Scope, snap store.Snapshot, recent []store.Change) *drawings {
	return &drawings{scope: scope, snap: snap, recent: recent, authors: authorsOf(snap, recent),
		drawn: map[viewer][]byte{}, draw: h.funcs.draw}
}

func (d *drawings) forConn(c *liveConn) []byte {
	v := viewerFor(c, d.authors)
	part, ok := d.drawn[v]
	if !ok {
		part = d.draw(d.scope, d.snap, v, d.recent)
		d.drawn[v] = part
	}
	return part
}

// resync sends every page a fresh copy of the stored scopes: changes may
// have been missed.
func (h *hub) resync(ctx context.Context) {
	h.mu.Lock()
	conns := slices.Collect(maps.Keys(h.conns))
	h.mu.Unlock()
	drawn := map[store.Owner]*drawings{} // general is read once for all
	for _, c := range conns {
		if c.ctx.Err() != nil {
			continue
		}
		for _, o := range storedOwners(c) {
			d, ok := drawn[o]
			if !ok {
				snap, err := h.funcs.read(ctx, o)
				if err != nil {
					h.log.Error("live: resync", "error", err, "owner", o.String())
					return
				}
				d = h.drawings(o.Scope, snap, h.recentOf(o))
				drawn[o] = d
			}
			h.send(c, partOf(o.Scope), d.forConn(c))
		}
	}
}

// pushOwner reads an owner's current state and sends it to the pages that
// see it. When every change came from one page, that page is skipped: it
// already swapped its own answer. at is when the first change committed.
func (h *hub) pushOwner(ctx context.Context, o store.Owner, origins map[string]bool, at int64) {
	skip := ""
	if len(origins) == 1 {
		for origin := range origins {
			skip = origin
		}
	}
	to := h.recipientList(o.UserID, o.TabID, skip)
	if len(to) == 0 {
		return // nobody to tell: no read, no render
	}
	snap, err := h.funcs.read(ctx, o)
	if err != nil {
		h.log.Error("live: read changed scope", "error", err, "owner", o.String())
		return
	}
	d := h.drawings(o.Scope, snap, h.recentOf(o))
	for _, c := range to {
		h.send(c, partOf(o.Scope), d.forConn(c))
	}
	h.metrics.Pushed(len(to), at)
}

// pushBrowser sends a browser-scope change to the same browser's other
// pages.
func (h *hub) pushBrowser(c store.Change) {
	to := h.recipientList(c.Owner.UserID, "", c.Origin.ClientID)
	if len(to) == 0 {
		return
	}
	snap, err := h.funcs.browser(c.Owner.UserID, c.Value)
	if err != nil {
		h.log.Error("live: read a browser change", "error", err)
		return
	}
	c.Value = nil
	h.remember(c)
	d := h.drawings(store.Browser, snap, h.recentOf(c.Owner))
	for _, conn := range to {
		h.send(conn, partBrowser, d.forConn(conn))
	}
	h.metrics.Pushed(len(to), c.At)
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

// recipientList is recipients, gathered.
func (h *hub) recipientList(user, tab, skip string) []*liveConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Collect(h.recipients(user, tab, skip))
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

// join sends a new connection the current state of every scope it sees and
// who shares them, in one message, then adds it to the set, so every later
// push comes after that state.
func (h *hub) join(ctx context.Context, c *liveConn, drawn []byte) {
	if c.ctx.Err() != nil {
		return // gone before its turn: nothing to draw, nobody to add
	}
	v := viewer{UserID: c.userID, Tab: c.tab}
	var state bytes.Buffer
	for _, o := range storedOwners(c) {
		snap, err := h.funcs.read(ctx, o)
		if store.FaultOf(err) != nil {
			// The page stays, says so, and joins again once the storage
			// is back (setHealth).
			c.partial = true
			break
		}
		if err != nil {
			h.log.Error("live: snapshot", "error", err, "owner", o.String())
			c.cancel(err)
			return
		}
		state.Write(h.funcs.draw(o.Scope, snap, v, nil))
	}
	state.Write(h.funcs.draw(store.Client, h.funcs.client(c.userID, c.clientID), v, nil))
	state.Write(drawn)
	h.mu.Lock()
	shared, fault := h.shared, h.fault
	h.mu.Unlock()
	for _, scope := range []store.Scope{store.General, store.User, store.Browser} {
		state.Write(h.funcs.presence(scope, shared, v))
	}
	if c.partial && fault == nil {
		fault = store.ErrUnavailable // seen before watchHealth sees it
	}
	state.Write(h.funcs.drawHealth(fault))
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
	h.presenceDirty = true
	h.metrics.LiveConnections(1)
}

func (h *hub) leave(c *liveConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.conns[c]; !ok {
		return
	}
	delete(h.conns, c)
	h.metrics.LiveConnections(-1)
	h.presenceDirty = true
	mine := h.byUser[c.userID]
	delete(mine, c)
	for other := range mine {
		if other.tabID == c.tabID {
			return // the tab is still open
		}
	}
	delete(h.recent, store.TabOwner(c.userID, c.tabID))
	if len(mine) == 0 {
		delete(h.byUser, c.userID)
		delete(h.recent, store.UserOwner(c.userID))
		delete(h.recent, store.Owner{Scope: store.Browser, UserID: c.userID})
	}
}

// localPresence is who has a page open on this instance. h.mu is held.
func (h *hub) localPresence() store.Presence {
	p := store.Presence{}
	for user, conns := range h.byUser {
		var tabs []int
		for c := range conns {
			if c.tab > 0 {
				tabs = append(tabs, c.tab)
			}
		}
		slices.Sort(tabs)
		p[user] = slices.Compact(tabs)
	}
	return p
}

// sharePresence shares this instance's pages soon after they change (and
// every presenceHeartbeat regardless), and hands run what every instance
// has open.
func (h *hub) sharePresence() {
	tick := time.NewTicker(presenceEvery)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-h.quit:
			return
		case <-tick.C:
		}
		h.mu.Lock()
		due := h.presenceDirty || time.Since(last) >= presenceHeartbeat
		h.presenceDirty = false
		mine := h.localPresence()
		h.mu.Unlock()
		if !due {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		all, err := h.funcs.share(ctx, mine)
		cancel()
		if err != nil {
			h.log.Warn("live: share presence", "error", err)
			h.mu.Lock()
			h.presenceDirty = true // try again
			h.mu.Unlock()
			continue
		}
		last = time.Now()
		h.post(hubEvent{presence: all})
	}
}

// watchHealth asks the storage how it is every healthEvery and tells run
// when that changes.
func (h *hub) watchHealth() {
	tick := time.NewTicker(healthEvery)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-h.quit:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), healthEvery/2)
		err := h.funcs.health(ctx)
		cancel()
		fault := store.FaultOf(err)
		if err != nil && fault == nil {
			fault = store.ErrUnavailable
		}
		if fault == last {
			continue
		}
		if fault != nil {
			h.log.Error("storage fault: requests that need it are refused until it passes", "error", err)
		} else {
			h.log.Info("storage works again", "after", last)
		}
		last = fault
		h.post(hubEvent{health: true, fault: fault})
	}
}

// setHealth tells every page the storage's state. When the storage is back,
// every page reads its scopes again (what changed meanwhile was not pushed),
// and a page that joined without them joins again.
func (h *hub) setHealth(ctx context.Context, fault error) {
	h.mu.Lock()
	was := h.fault
	h.fault = fault
	var partial []*liveConn
	for c := range h.conns {
		if c.partial {
			partial = append(partial, c)
		}
	}
	h.mu.Unlock()
	h.deliver("", "", "", partHealth, h.funcs.drawHealth(fault))
	if was == nil || fault != nil {
		return
	}
	for _, c := range partial {
		c.cancel(errRejoin)
	}
	h.resync(ctx)
}

// healthNow is the storage's fault as last seen, for a page being drawn.
func (h *hub) healthNow() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fault
}

// presenceNow is who has a page open now, as last shared.
func (h *hub) presenceNow() store.Presence {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.shared
}

// updatePresence takes in who has a page open now and pushes the presence
// lines that changed: general to every page, user and browser to the
// pages of each browser whose tabs changed.
func (h *hub) updatePresence(all store.Presence) {
	h.mu.Lock()
	old := h.shared
	h.shared = all
	h.mu.Unlock()
	count := func(p store.Presence) (tabs, browsers int) {
		for _, t := range p {
			tabs += len(t)
		}
		return tabs, len(p)
	}
	ot, ob := count(old)
	nt, nb := count(all)
	if ot != nt || ob != nb {
		h.deliver("", "", "", partPresenceGeneral, h.funcs.presence(store.General, all, viewer{}))
	}
	for user := range all {
		if !slices.Equal(old[user], all[user]) {
			h.pushUserPresence(user, all)
		}
	}
	for user := range old {
		if _, ok := all[user]; !ok {
			h.pushUserPresence(user, all)
		}
	}
}

// pushUserPresence sends the user's and browser's presence lines to that
// browser's pages, each marked with its own tab.
func (h *hub) pushUserPresence(user string, all store.Presence) {
	for _, c := range h.recipientList(user, "", "") {
		v := viewer{UserID: c.userID, Tab: c.tab}
		msg := append(h.funcs.presence(store.User, all, v), h.funcs.presence(store.Browser, all, v)...)
		h.send(c, partPresenceUser, msg)
	}
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
	number, err := s.store.TabNumber(r.Context(), id.UserID, tab)
	if store.FaultOf(err) != nil {
		number = 0 // unnamed until it joins again, once the storage is back
	} else if err != nil {
		return err
	}
	v := viewer{UserID: id.UserID, Tab: number}
	drawn := s.drawPart(store.Browser, browserScope(id).list(id.UserID), v, nil)
	boot := s.store.Boot()
	restarted := q.Get("boot") != "" && q.Get("boot") != strconv.FormatInt(boot.Number, 10)
	drawn = append(drawn, s.drawRejoined(boot, restarted)...)

	var raw net.Conn
	ws, err := websocket.Accept(smallBuffers{w, &raw}, r, nil)
	if err != nil {
		return nil // Accept has answered (e.g. 403 for a foreign origin)
	}
	h := s.hub
	c := newLiveConn(id.UserID, tab, number, client, ws, raw, s.liveStall)
	c.partial = number == 0
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
	if !h.post(hubEvent{join: c, drawn: drawn}) {
		c.cancel(errShutdown)
	}
	return nil
}
