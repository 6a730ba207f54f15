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

	"github.com/a-h/templ"
	"github.com/coder/websocket"

	"github.com/storagescopes/app/internal/metrics"
	"github.com/storagescopes/app/store"
)

// Live updates: each page holds one WebSocket (GET /live). After every
// committed change the hub pushes, as out-of-band HTML that htmx swaps in by
// id, what that one change touched (its bound control, its inspector row,
// the key count, the counter, one feed item) to exactly the pages that see
// its scope: general to every page, user and browser to the same browser's
// pages, tab to that tab's own page; the page that made the change gets no
// echo. A change is drawn at most twice, whatever the number of pages: once
// for the browser that made it and once for everyone else. It also pushes
// who shares each scope now. One goroutine (run) does every read, draw and
// push in order, so a page never receives an older state after a newer
// one. The connections themselves are liveconn.go's.

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

// hubFuncs are what the hub is handed to read and draw with; it knows
// nothing else of the server.
type hubFuncs struct {
	// view reads what a window shows of a stored owner now.
	view func(ctx context.Context, o store.Owner, w store.Window) (store.View, error)
	// browser reads the browser scope from the contents a change carries
	// (the cookie is not kept on the server).
	browser func(userID string, contents json.RawMessage) (store.Snapshot, error)
	// client reads one page's client scope.
	client func(userID, clientID string) store.Snapshot
	// drawChange draws one change as v sees it; its scope holds keys keys
	// as of version keysAt.
	drawChange func(c store.Change, keys int, keysAt int64, v viewer) templ.Component
	// drawPanel draws the parts of a scope's panel that can change, from
	// what window w shows of it, as v sees it.
	drawPanel func(scope store.Scope, view store.View, w store.Window, v viewer) templ.Component
	// drawPresence draws a scope's presence line as v sees it.
	drawPresence func(scope store.Scope, p store.Presence, v viewer) templ.Component
	// share tells the other instances which pages this one has open and
	// returns all of them (store.Store.SharePresence).
	share func(ctx context.Context, mine store.Presence) (store.Presence, error)
	// health is the storage's fault now, or nil (store.Store.Health).
	health func(ctx context.Context) error
	// drawHealth draws the live indicator's storage state.
	drawHealth func(fault error) templ.Component
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

// hubEvent is what run works through, in order: a connection that joins
// (and gets the state of every scope it sees), a page that missed changes
// (and gets what it shows afresh), committed changes, or who has a page
// open now.
type hubEvent struct {
	join *liveConn
	// drawn is what the joining page's handler drew: its browser scope (from
	// its cookie), the boot, and whether the server started again since the
	// page loaded.
	drawn    templ.Component
	refresh  *liveConn
	changes  []store.Change
	presence store.Presence
	// health says the storage's fault changed to fault (nil: it works).
	health bool
	fault  error
}

func newHub(funcs hubFuncs, log *slog.Logger, m *metrics.Metrics) *hub {
	h := &hub{
		funcs:    funcs,
		log:      log,
		metrics:  m,
		conns:    map[*liveConn]struct{}{},
		byUser:   map[string]map[*liveConn]struct{}{},
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
func (h *hub) handle(events []hubEvent) {
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

// slotOf is the outbox slot of a change: one per key of a scope (a page
// sees one owner of each), so that a page that reads slowly gets only the
// newest state of each key.
func slotOf(c store.Change) string { return string(c.Owner.Scope) + "/" + c.Key }

// push sends one change to the pages that see its owner, but the page that
// made it: drawn once for the pages of the browser that made it (which say
// "by Tab 3", and the page that is Tab 3 "by this tab"), once for the
// others ("by another browser").
func (h *hub) push(b *batch, c store.Change) {
	to := h.recipientList(c.Owner.UserID, c.Owner.TabID, c.Origin.ClientID)
	if c.Owner.Scope == store.Browser {
		h.mu.Lock()
		if h.byUser[c.Owner.UserID] != nil {
			h.browsers[c.Owner.UserID] = c
		}
		h.mu.Unlock()
	}
	if len(to) == 0 {
		return // nobody to tell: no read, no render
	}
	var keys int
	var keysAt int64
	if c.Owner.Scope == store.Browser {
		snap, err := h.funcs.browser(c.Owner.UserID, c.Value)
		if err != nil {
			h.log.Error("live: read a browser change", "error", err)
			return
		}
		view := snap.View(store.Window{Named: []string{c.Key}})
		c.Value = nil // the cookie's contents: the key's value, for a set
		if c.Op == store.OpSet {
			c.Value = view.Named[0].Value
		}
		keys, keysAt = view.Keys, view.Version
	} else {
		// A count read for an earlier change of this batch may not hold
		// this one yet (Redis: the stream brings them one by one).
		counted, ok := b.counts[c.Owner]
		if !ok || counted.Version < c.Version {
			var err error
			if counted, err = h.funcs.view(b.ctx, c.Owner, store.Window{}); err != nil {
				h.log.Error("live: count a changed scope", "error", err, "owner", c.Owner.String())
				return
			}
			b.counts[c.Owner] = counted
		}
		keys, keysAt = counted.Keys, counted.Version
	}
	slot := slotOf(c)
	var mine, theirs []byte
	for _, conn := range to {
		var msg []byte
		if conn.userID == c.Origin.UserID {
			if mine == nil {
				mine = h.drawn(h.funcs.drawChange(c, keys, keysAt, viewer{UserID: conn.userID}))
			}
			msg = mine
		} else {
			if theirs == nil {
				theirs = h.drawn(h.funcs.drawChange(c, keys, keysAt, viewer{}))
			}
			msg = theirs
		}
		h.send(conn, slot, msg)
	}
	h.metrics.Pushed(len(to), c.At)
}

// storedOwners are the stored scopes a page sees.
func storedOwners(c *liveConn) [3]store.Owner {
	return [3]store.Owner{store.GeneralOwner, store.UserOwner(c.userID), store.TabOwner(c.userID, c.tabID)}
}

// panels draws what c shows of every scope but the browser's (which only
// its cookie, or its latest change, holds), each as c's browser sees it:
// the general scope's apart, since most pages share its drawing (see
// generalPanels), the others into mine. It reports the storage's fault, if
// a read met one.
func (h *hub) panels(b *batch, c *liveConn, mine *bytes.Buffer) (general []byte, err error) {
	for _, o := range storedOwners(c) {
		w := c.window(o.Scope)
		view, err := h.funcs.view(b.ctx, o, w)
		if err != nil {
			return nil, err
		}
		v := viewer{}
		if madeAny(view, c.userID) {
			v = viewer{UserID: c.userID}
		}
		if o.Scope != store.General {
			h.render(mine, h.funcs.drawPanel(o.Scope, view, w, v))
			continue
		}
		if h.generalPanels == nil || view.Version != h.generalVersion || len(h.generalPanels) >= generalPanelsMax {
			h.generalPanels, h.generalVersion = map[generalPanel][]byte{}, view.Version
		}
		key := generalPanel{filter: w.Filter, rows: w.Limit, viewer: v.UserID}
		if general = h.generalPanels[key]; general == nil {
			general = h.drawn(h.funcs.drawPanel(o.Scope, view, w, v))
			h.generalPanels[key] = general
		}
	}
	w := c.window(store.Client)
	h.render(mine, h.funcs.drawPanel(store.Client, h.funcs.client(c.userID, c.clientID).View(w), w, viewer{UserID: c.userID}))
	return general, nil
}

// drawn renders a message many pages share or one that may wait a while:
// in a reused buffer, kept in a copy of its own size (not in a buffer grown
// by doubling, which a thousand pages joining at once would each leave
// behind).
func (h *hub) drawn(c templ.Component) []byte {
	buf := renderBuffers.Get().(*bytes.Buffer)
	defer putBuffer(buf)
	h.render(buf, c)
	return bytes.Clone(buf.Bytes())
}

// render renders c into a message being put together.
func (h *hub) render(buf *bytes.Buffer, c templ.Component) {
	if err := c.Render(context.Background(), buf); err != nil {
		h.log.Error("live: render", "error", err)
	}
}

// madeAny reports whether user made anything a view shows.
func madeAny(view store.View, user string) bool {
	for _, e := range view.Named {
		if e.Origin.UserID == user {
			return true
		}
	}
	for _, e := range view.Rows {
		if e.Origin.UserID == user {
			return true
		}
	}
	return false
}

// join sends a new connection what it shows of every scope it sees and who
// shares them (in two messages: the general scope's, which it shares with
// most pages, and the rest), then adds it to the set, so every later push
// comes after that state.
func (h *hub) join(b *batch, c *liveConn, drawn templ.Component) {
	if c.ctx.Err() != nil {
		return // gone before its turn: nothing to draw, nobody to add
	}
	state := renderBuffers.Get().(*bytes.Buffer)
	defer putBuffer(state)
	general, err := h.panels(b, c, state)
	if store.FaultOf(err) != nil {
		// The page stays, says so, and joins again once the storage is
		// back (setHealth).
		c.partial = true
	} else if err != nil {
		h.log.Error("live: join", "error", err)
		c.cancel(err)
		return
	}
	if drawn != nil {
		h.render(state, drawn)
	}
	h.mu.Lock()
	shared, fault := h.shared, h.fault
	h.mu.Unlock()
	v := viewer{UserID: c.userID, Tab: c.tab}
	for _, scope := range []store.Scope{store.General, store.User, store.Browser} {
		h.render(state, h.funcs.drawPresence(scope, shared, v))
	}
	if c.partial && fault == nil {
		fault = store.ErrUnavailable // seen before watchHealth sees it
	}
	h.render(state, h.funcs.drawHealth(fault))

	// Added before its join is handed over (no push comes between: this
	// goroutine makes them all), so that a page that has read its join is
	// sure to be sent every later change. Its end runs leave, which may have
	// run already (then c would stay forever) or waits for h.mu (then it
	// removes c).
	h.mu.Lock()
	if c.ctx.Err() != nil {
		h.mu.Unlock()
		return
	}
	h.conns[c] = struct{}{}
	if h.byUser[c.userID] == nil {
		h.byUser[c.userID] = map[*liveConn]struct{}{}
	}
	h.byUser[c.userID][c] = struct{}{}
	h.presenceDirty = true
	h.metrics.LiveConnections(1)
	h.mu.Unlock()
	c.sendFresh(general, bytes.Clone(state.Bytes()))
}

// refresh sends a page that missed changes (it fell too far behind, or the
// changes were lost on their way) what it shows afresh, in place of every
// change waiting for it.
func (h *hub) refresh(b *batch, c *liveConn) {
	if c.ctx.Err() != nil {
		return
	}
	state := renderBuffers.Get().(*bytes.Buffer)
	defer putBuffer(state)
	general, err := h.panels(b, c, state)
	if err != nil {
		h.log.Error("live: refresh", "error", err)
		return
	}
	h.mu.Lock()
	latest, ok := h.browsers[c.userID]
	h.mu.Unlock()
	if ok {
		if snap, err := h.funcs.browser(c.userID, latest.Value); err == nil {
			w := c.window(store.Browser)
			h.render(state, h.funcs.drawPanel(store.Browser, snap.View(w), w, viewer{UserID: c.userID}))
		}
	}
	c.sendFresh(general, bytes.Clone(state.Bytes()))
}

// resync sends every page what it shows afresh: changes may have been
// missed.
func (h *hub) resync(b *batch) {
	h.mu.Lock()
	conns := slices.Collect(maps.Keys(h.conns))
	h.mu.Unlock()
	for _, c := range conns {
		h.refresh(b, c)
	}
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

// deliver sends msg in slot to the recipients (see recipients).
func (h *hub) deliver(user, tab, skip string, slot string, msg []byte) {
	for _, c := range h.recipientList(user, tab, skip) {
		h.send(c, slot, msg)
	}
}

// send hands c a message; a page that stopped reading is dropped (it
// reconnects, if it is still there, and gets the current state), and one
// that fell too far behind is drawn what it shows afresh.
func (h *hub) send(c *liveConn, slot string, msg []byte) {
	switch c.send(slot, msg) {
	case sendStalled:
		if c.ctx.Err() == nil {
			h.log.Warn("live: dropped a page that stopped reading", "user", c.userID[:min(8, len(c.userID))], "stalled", c.stall)
			c.cancel(errStalled)
		}
	case sendBehind:
		h.post(hubEvent{refresh: c})
	}
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
	if len(mine) == 0 {
		delete(h.byUser, c.userID)
		delete(h.browsers, c.userID)
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
// every page reads what it shows again (what changed meanwhile was not
// pushed), and a page that joined without it joins again.
func (h *hub) setHealth(b *batch, fault error) {
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
	h.deliver("", "", "", slotHealth, h.drawn(h.funcs.drawHealth(fault)))
	if was == nil || fault != nil {
		return
	}
	for _, c := range partial {
		c.cancel(errRejoin)
	}
	clear(b.counts)
	h.resync(b)
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
		h.deliver("", "", "", slotPresenceGeneral, h.drawn(h.funcs.drawPresence(store.General, all, viewer{})))
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
		msg := h.drawn(templ.Join(h.funcs.drawPresence(store.User, all, v), h.funcs.drawPresence(store.Browser, all, v)))
		h.send(c, slotPresenceUser, msg)
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
// the cookie, never from the URL; the origin is checked by Accept. The URL
// names the tab, the page load, the boot the page was drawn on, and what its
// inspectors show (q-{scope}: the filter, n-{scope}: how many rows), so
// that its join draws just that. The handler returns at once: the
// connection lives on in its own goroutines, and the request (headers,
// contexts, the HTTP server's goroutine) is freed.
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
	shown, err := s.shownIn(q)
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
	c := newLiveConn(id.UserID, tab, number, client, s.liveStall)
	c.shown = shown
	bw := c.window(store.Browser)
	boot := s.store.Boot()
	restarted := q.Get("boot") != "" && q.Get("boot") != strconv.FormatInt(boot.Number, 10)
	drawn := templ.Join(s.drawPanel(store.Browser, browserScope(id).list(id.UserID).View(bw), bw, viewer{UserID: id.UserID}),
		s.drawRejoined(boot, restarted))

	var raw net.Conn
	ws, err := websocket.Accept(smallBuffers{w, &raw, s.metrics}, r, s.liveOpts)
	if err != nil {
		return nil // Accept has answered (e.g. 403 for a foreign origin)
	}
	c.ws, c.raw = ws, raw
	h := s.hub
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

// shownIn reads what a page's inspectors show from its live URL: for each
// scope, q-{scope} (the filter) and n-{scope} (how many rows, at least the
// first window, at most a scope's every key).
func (s *Server) shownIn(q map[string][]string) (map[store.Scope]inspectorShown, error) {
	var shown map[store.Scope]inspectorShown
	for _, scope := range pageScopes {
		filter, rows := "", ""
		if v := q["q-"+string(scope)]; len(v) > 0 {
			filter = v[0]
		}
		if v := q["n-"+string(scope)]; len(v) > 0 {
			rows = v[0]
		}
		if filter == "" && rows == "" {
			continue
		}
		n := inspectorRows
		if rows != "" {
			var err error
			if n, err = strconv.Atoi(rows); err != nil || n < 1 {
				return nil, badRequest("n-" + string(scope) + " must be a number of rows")
			}
		}
		if err := s.checkFilter("q-"+string(scope), filter); err != nil {
			return nil, err
		}
		if shown == nil {
			shown = map[store.Scope]inspectorShown{}
		}
		shown[scope] = inspectorShown{filter: filter, rows: min(max(n, inspectorRows), s.limits.KeysPerOwner)}
	}
	return shown, nil
}
