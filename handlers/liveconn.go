package handlers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/storagescopes/app/store"
)

// One page's live connection: its outbox, its writer and its end. The hub
// (live.go) decides what to send to whom.

// Tuning of the live connections.
const (
	livePingWait  = 10 * time.Second // a pong that takes longer means a dead peer
	liveCloseWait = time.Second      // how long shutdown waits for close handshakes
	// liveStall is how long a write may wait on a page that reads nothing
	// before the page is dropped (Config.LiveStall).
	liveStall = 30 * time.Second
)

// part is what one message to a page holds: the state of every scope on
// joining, then the state of one scope, or a ping. Every push is a part's
// whole state with its version, so a page needs only the newest of each
// part: the outbox holds at most one message per part, and a newer one
// replaces the one still waiting.
type part uint8

const (
	partJoin part = iota
	partGeneral
	partUser
	partBrowser
	partTab
	partClient
	partPresenceGeneral
	partPresenceUser // the user's and browser's lines, which say the same
	partHealth
	partPing
	numParts
)

func partOf(scope store.Scope) part {
	switch scope {
	case store.User:
		return partUser
	case store.Browser:
		return partBrowser
	case store.Tab:
		return partTab
	case store.Client:
		return partClient
	}
	return partGeneral
}

// Why a connection ends.
var (
	errStalled  = errors.New("page stopped reading")
	errShutdown = errors.New("server shutting down")
	errGone     = errors.New("connection lost")
	errRejoin   = errors.New("storage back: join again")
)

// liveConn is one page's connection. It is small on purpose: an idle page
// costs only this, the socket's small buffers and the WebSocket library's
// parked reader goroutine. A writer goroutine exists only while there is
// something to send.
type liveConn struct {
	userID, tabID, clientID string
	tab                     int  // the tab's number in its browser
	partial                 bool // joined during a storage fault, without its stored scopes
	ws                      *websocket.Conn
	raw                     net.Conn        // the socket under ws
	ctx                     context.Context // ends when the connection must end
	cancel                  context.CancelCauseFunc
	stall                   time.Duration

	mu      sync.Mutex
	pending [numParts][]byte // the newest message of each waiting part (a ping is nil)
	order   [numParts]part   // the waiting parts, in the order they began to wait
	waiting int              // how many of order
	writing bool             // a flush goroutine is running
	since   time.Time        // when the write under way began
}

func newLiveConn(userID, tabID string, tab int, clientID string, ws *websocket.Conn, raw net.Conn, stall time.Duration) *liveConn {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &liveConn{userID: userID, tabID: tabID, tab: tab, clientID: clientID, ws: ws, raw: raw, ctx: ctx, cancel: cancel, stall: stall}
}

// onEnd arranges the connection's end. No goroutine waits for it: the
// library's reader answers pings and close frames and ends when the page
// goes away, which ends c.ctx; the end of c.ctx (for any reason) closes
// the socket with a code that fits and then runs forget.
func (c *liveConn) onEnd(forget func()) {
	readCtx := c.ws.CloseRead(context.Background())
	context.AfterFunc(readCtx, func() { c.cancel(errGone) })
	context.AfterFunc(c.ctx, func() {
		c.closeWith(context.Cause(c.ctx))
		forget()
	})
}

// send puts msg in the outbox as the newest of part p and starts a writer
// if none is running. It reports false when a write has waited longer than
// the stall limit: the page stopped reading.
func (c *liveConn) send(p part, msg []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing && !c.since.IsZero() && time.Since(c.since) > c.stall {
		return false
	}
	if !c.isWaiting(p) {
		c.order[c.waiting] = p
		c.waiting++
	}
	c.pending[p] = msg
	if !c.writing {
		c.writing = true
		go c.flush()
	}
	return true
}

// isWaiting reports whether part p is in the outbox. c.mu is held.
func (c *liveConn) isWaiting(p part) bool {
	for _, q := range c.order[:c.waiting] {
		if q == p {
			return true
		}
	}
	return false
}

// flush writes the outbox until it is empty, oldest waiting part first.
// Writes carry no context that can end (that costs a registration per
// write): a page that stops reading is dropped by send, and closing the
// socket ends the write.
func (c *liveConn) flush() {
	for {
		c.mu.Lock()
		if c.waiting == 0 || c.ctx.Err() != nil {
			c.pending, c.waiting, c.writing, c.since = [numParts][]byte{}, 0, false, time.Time{}
			c.mu.Unlock()
			return
		}
		p := c.order[0]
		copy(c.order[:], c.order[1:c.waiting])
		c.waiting--
		msg := c.pending[p]
		c.pending[p] = nil
		c.since = time.Now()
		c.mu.Unlock()

		var err error
		if p == partPing {
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
// reconnect (and so to get the current state).
func (c *liveConn) closeWith(cause error) {
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
	case <-time.After(liveCloseWait):
		// The page did not answer the close: drop the socket, which ends
		// the handshake and the library's reader at once.
		c.raw.Close()
		<-done
	}
}

// Each live connection's buffers. The HTTP server's are 4 KiB each, most
// of an idle connection's memory. A page sends almost nothing (pongs, a
// close frame), so the read buffer is small; a push is one frame of a few
// KiB, and a write buffer that holds it whole sends it in one write call.
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
