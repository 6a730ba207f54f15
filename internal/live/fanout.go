package live

import (
	"bytes"
	"context"
	"encoding/json"
	"iter"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
)

// slotOf is the outbox slot of a change: one per key of a scope (a page
// sees one owner of each), so that a page that reads slowly gets only the
// newest state of each key.
func slotOf(c store.Change) string { return string(c.Owner.Scope) + "/" + c.Key }

// push sends one change to the pages that see its owner, but the page that
// made it: drawn once for the pages of the browser that made it (which say
// "by Tab 3", and the page that is Tab 3 "by this tab"), once for the
// others ("by another browser").
func (h *Hub) push(b *batch, c store.Change) {
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
		snap, err := browserScope(c.Owner.UserID, c.Value)
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
			if counted, err = h.store.View(b.ctx, c.Owner, store.Window{}); err != nil {
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
				mine = h.drawn(h.heads.DrawChange(c, keys, keysAt, viewmodel.Viewer{UserID: conn.userID}, time.Now()))
			}
			msg = mine
		} else {
			if theirs == nil {
				theirs = h.drawn(h.heads.DrawChange(c, keys, keysAt, viewmodel.Viewer{}, time.Now()))
			}
			msg = theirs
		}
		h.send(conn, slot, msg)
	}
	h.metrics.Pushed(len(to), c.At)
}

// storedOwners are the stored scopes a page sees.
func storedOwners(c *conn) [3]store.Owner {
	return [3]store.Owner{store.GeneralOwner, store.UserOwner(c.userID), store.TabOwner(c.userID, c.tabID)}
}

// panels draws what c shows of every scope but the browser's (which only
// its cookie, or its latest change, holds), each as c's browser sees it:
// the general scope's apart, since most pages share its drawing (see
// generalPanels), the others into mine. It reports the storage's fault, if
// a read met one.
func (h *Hub) panels(b *batch, c *conn, mine *bytes.Buffer) (general []byte, err error) {
	for _, o := range storedOwners(c) {
		w := h.heads.WindowIn(c.windows, o.Scope)
		view, err := h.store.View(b.ctx, o, w)
		if err != nil {
			return nil, err
		}
		v := viewmodel.Viewer{}
		if madeAny(view, c.userID) {
			v = viewmodel.Viewer{UserID: c.userID}
		}
		if o.Scope != store.General {
			h.render(mine, h.heads.DrawPanel(o.Scope, view, w, v, time.Now()))
			continue
		}
		if h.generalPanels == nil || view.Version != h.generalVersion || len(h.generalPanels) >= generalPanelsMax {
			h.generalPanels, h.generalVersion = map[generalPanel][]byte{}, view.Version
		}
		key := generalPanel{filter: w.Filter, rows: w.Limit, viewer: v.UserID}
		if general = h.generalPanels[key]; general == nil {
			general = h.drawn(h.heads.DrawPanel(o.Scope, view, w, v, time.Now()))
			h.generalPanels[key] = general
		}
	}
	w := h.heads.WindowIn(c.windows, store.Client)
	h.render(mine, h.heads.DrawPanel(store.Client, h.clients.View(c.userID, c.clientID, w), w, viewmodel.Viewer{UserID: c.userID}, time.Now()))
	return general, nil
}

// drawn renders a message many pages share or one that may wait a while:
// in a reused buffer, kept in a copy of its own size (not in a buffer grown
// by doubling, which a thousand pages joining at once would each leave
// behind).
func (h *Hub) drawn(c templ.Component) []byte {
	buf := buffers.Get().(*bytes.Buffer)
	defer putBuffer(buf)
	h.render(buf, c)
	return bytes.Clone(buf.Bytes())
}

// render renders c into a message being put together.
func (h *Hub) render(buf *bytes.Buffer, c templ.Component) {
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
func (h *Hub) join(b *batch, c *conn, drawn templ.Component) {
	if c.ctx.Err() != nil {
		return // gone before its turn: nothing to draw, nobody to add
	}
	state := buffers.Get().(*bytes.Buffer)
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
	v := viewmodel.Viewer{UserID: c.userID, Tab: c.tab}
	for _, scope := range []store.Scope{store.General, store.User, store.Browser} {
		h.render(state, viewmodel.DrawPresence(scope, shared, v))
	}
	if c.partial && fault == nil {
		fault = store.ErrUnavailable // seen before watchHealth sees it
	}
	h.render(state, viewmodel.DrawHealth(fault))

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
		h.byUser[c.userID] = map[*conn]struct{}{}
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
func (h *Hub) refresh(b *batch, c *conn) {
	if c.ctx.Err() != nil {
		return
	}
	state := buffers.Get().(*bytes.Buffer)
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
		if snap, err := browserScope(c.userID, latest.Value); err == nil {
			w := h.heads.WindowIn(c.windows, store.Browser)
			h.render(state, h.heads.DrawPanel(store.Browser, snap.View(w), w, viewmodel.Viewer{UserID: c.userID}, time.Now()))
		}
	}
	c.sendFresh(general, bytes.Clone(state.Bytes()))
}

// resync sends every page what it shows afresh: changes may have been
// missed.
func (h *Hub) resync(b *batch) {
	h.mu.Lock()
	conns := slices.Collect(maps.Keys(h.conns))
	h.mu.Unlock()
	for _, c := range conns {
		h.refresh(b, c)
	}
}

// recipients yields the pages of user (all pages if user is empty), of
// tab only if tab is set, except the page skip. h.mu is held.
func (h *Hub) recipients(user, tab, skip string) iter.Seq[*conn] {
	return func(yield func(*conn) bool) {
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
func (h *Hub) recipientList(user, tab, skip string) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Collect(h.recipients(user, tab, skip))
}

// deliver sends msg in slot to the recipients (see recipients).
func (h *Hub) deliver(user, tab, skip string, slot string, msg []byte) {
	for _, c := range h.recipientList(user, tab, skip) {
		h.send(c, slot, msg)
	}
}

// send hands c a message; a page that stopped reading is dropped (it
// reconnects, if it is still there, and gets the current state), and one
// that fell too far behind is drawn what it shows afresh.
func (h *Hub) send(c *conn, slot string, msg []byte) {
	switch c.send(slot, msg) {
	case sendStalled:
		if c.ctx.Err() == nil {
			h.log.Warn("live: dropped a page that stopped reading", "user", c.userID[:min(8, len(c.userID))], "stalled", c.stall)
			c.cancel(errStalled)
		}
	case sendBehind:
		h.post(event{refresh: c})
	}
}

func (h *Hub) leave(c *conn) {
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

// browserScope reads the browser scope of user from the contents a change
// of it carries (the cookie is not kept on the server).
func browserScope(user string, contents json.RawMessage) (store.Snapshot, error) {
	var d store.MemDict
	if err := json.Unmarshal(contents, &d); err != nil {
		return store.Snapshot{}, err
	}
	return d.List(user), nil
}

// buffers are the drawings' buffers, reused.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putBuffer returns a buffer to the pool, unless it grew outsized (left to
// the collector).
func putBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= 1<<20 {
		buf.Reset()
		buffers.Put(buf)
	}
}
