package live

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/storagescopes/app/store"
)

// One page's live connection: its outbox, its writer and its end. The hub
// decides what to send to whom.

// Tuning of the live connections.
const (
	pingWait  = 10 * time.Second // a pong that takes longer means a dead peer
	closeWait = time.Second      // how long shutdown waits for close handshakes
)

// A page's outbox holds at most one message per slot: one per key of each
// scope it sees (a change), and one each for what it shows whole (its join,
// or a fresh view of it), the presence lines, the storage's health and a
// ping. Every message carries the whole state of what its slot covers, with
// its version, so a newer message replaces the one still waiting in its
// slot: a page that reads more slowly than the writers write gets fewer,
// newer messages. Past outboxSlots or outboxBytes, the waiting changes are
// dropped and the page is drawn what it shows afresh instead (the hub's
// refresh), so what waits for a slow page stays bounded.
const (
	slotJoinGeneral     = "join-general"
	slotJoin            = "join"
	slotPresenceGeneral = "presence-general"
	slotPresenceUser    = "presence-user" // the user's and browser's lines, which say the same
	slotHealth          = "health"
	slotPing            = "ping"

	outboxSlots = 64
	outboxBytes = 512 << 10
)

// waiting is one message in an outbox.
type waiting struct {
	slot string
	msg  []byte
}

// What send did with a message.
type sendResult uint8

const (
	sent        sendResult = iota
	sendStalled            // a write has waited past the stall limit: the page stopped reading
	sendBehind             // the outbox was full: the page needs a fresh view
)

// isChange reports whether slot holds a change (a key of a scope).
func isChange(slot string) bool {
	switch slot {
	case slotJoinGeneral, slotJoin, slotPresenceGeneral, slotPresenceUser, slotHealth, slotPing:
		return false
	}
	return true
}

// Why a connection ends.
var (
	errStalled  = errors.New("page stopped reading")
	errShutdown = errors.New("server shutting down")
	errGone     = errors.New("connection lost")
	errRejoin   = errors.New("storage back: join again")
)

// conn is one page's connection. It is small on purpose: an idle page
// costs only this, the socket's small buffers and the WebSocket library's
// parked reader goroutine. A writer goroutine exists only while there is
// something to send.
type conn struct {
	userID, tabID, clientID string
	tab                     int  // the tab's number in its browser
	partial                 bool // joined during a storage fault, without its stored scopes
	// windows are what its panels show when not the first rows unfiltered
	// (nil: all do).
	windows map[store.Scope]store.Window
	ws      *websocket.Conn
	raw     net.Conn        // the socket under ws
	ctx     context.Context // ends when the connection must end
	cancel  context.CancelCauseFunc
	stall   time.Duration

	mu      sync.Mutex
	waiting []waiting // oldest first
	bytes   int       // of the messages waiting
	behind  bool      // changes were dropped: a fresh view is on its way
	writing bool      // a flush goroutine is running
	since   time.Time // when the write under way began
}

func newConn(p Page, stall time.Duration) *conn {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &conn{userID: p.UserID, tabID: p.TabID, tab: p.Tab, clientID: p.ClientID, windows: p.Windows,
		partial: p.Tab == 0, ctx: ctx, cancel: cancel, stall: stall}
}

// onEnd arranges the connection's end. No goroutine waits for it: the
// library's reader answers pings and close frames and ends when the page
// goes away, which ends c.ctx; the end of c.ctx (for any reason) closes
// the socket with a code that fits and then runs forget.
func (c *conn) onEnd(forget func()) {
	readCtx := c.ws.CloseRead(context.Background())
	context.AfterFunc(readCtx, func() { c.cancel(errGone) })
	context.AfterFunc(c.ctx, func() {
		c.closeWith(context.Cause(c.ctx))
		forget()
	})
}

// send puts msg in the outbox as the newest of its slot and starts a writer
// if none is running. It reports a page that stopped reading (a write has
// waited longer than the stall limit), and one that fell so far behind that
// its waiting changes were dropped for a fresh view.
func (c *conn) send(slot string, msg []byte) sendResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing && !c.since.IsZero() && time.Since(c.since) > c.stall {
		return sendStalled
	}
	change := isChange(slot)
	if change && c.behind {
		return sent // the fresh view on its way holds it
	}
	c.put(slot, msg)
	if change && (len(c.waiting) > outboxSlots || c.bytes > outboxBytes) {
		c.waiting = slices.DeleteFunc(c.waiting, func(w waiting) bool {
			if isChange(w.slot) {
				c.bytes -= len(w.msg)
				return true
			}
			return false
		})
		c.behind = true
		return sendBehind
	}
	return sent
}

// sendFresh puts what the page shows whole in the outbox: its join, or the
// fresh view of a page that fell behind; the general scope's part (general,
// nil after a fault), which many pages share, and the page's own.
func (c *conn) sendFresh(general, own []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.behind = false
	if general != nil {
		c.put(slotJoinGeneral, general)
	}
	c.put(slotJoin, own)
}

// put replaces the message waiting in slot, or adds one, and starts a
// writer. c.mu is held.
func (c *conn) put(slot string, msg []byte) {
	i := slices.IndexFunc(c.waiting, func(w waiting) bool { return w.slot == slot })
	if i >= 0 {
		c.bytes += len(msg) - len(c.waiting[i].msg)
		c.waiting[i].msg = msg
	} else {
		c.waiting = append(c.waiting, waiting{slot, msg})
		c.bytes += len(msg)
	}
	if !c.writing {
		c.writing = true
		go c.flush()
	}
}

// flush writes the outbox until it is empty, oldest waiting part first.
// Writes carry no context that can end (that costs a registration per
// write): a page that stops reading is dropped by send, and closing the
// socket ends the write.
func (c *conn) flush() {
	for {
		c.mu.Lock()
		if len(c.waiting) == 0 || c.ctx.Err() != nil {
			c.waiting, c.bytes, c.writing, c.since = nil, 0, false, time.Time{}
			c.mu.Unlock()
			return
		}
		next := c.waiting[0]
		c.waiting = slices.Delete(c.waiting, 0, 1)
		c.bytes -= len(next.msg)
		c.since = time.Now()
		c.mu.Unlock()

		var err error
		if next.slot == slotPing {
			ctx, cancel := context.WithTimeout(c.ctx, pingWait)
			err = c.ws.Ping(ctx)
			cancel()
		} else {
			err = c.ws.Write(context.Background(), websocket.MessageText, next.msg)
		}
		if err != nil {
			c.cancel(errGone)
		}
	}
}

// closeWith ends the connection with a code that tells the page to
// reconnect (and so to get the current state).
func (c *conn) closeWith(cause error) {
	code, reason := websocket.StatusGoingAway, "closing"
	switch {
	case errors.Is(cause, errGone):
		c.ws.CloseNow()
		return
	case errors.Is(cause, errShutdown):
		code, reason = websocket.StatusServiceRestart, "server restarting"
	case errors.Is(cause, errStalled):
		code, reason = websocket.StatusTryAgainLater, "stopped reading; reconnect for the current state"
	case errors.Is(cause, errRejoin):
		code, reason = websocket.StatusServiceRestart, "storage back; reconnect for the current state"
	}
	done := make(chan struct{})
	go func() {
		c.ws.Close(code, reason)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
		// The page did not answer the close: drop the socket, which ends
		// the handshake and the library's reader at once.
		c.raw.Close()
		<-done
	}
}
