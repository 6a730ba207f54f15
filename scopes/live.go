package scopes

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/a-h/templ"
	"github.com/coder/websocket"
	"github.com/storagescopes/app/internal/live"
	"github.com/storagescopes/app/internal/metrics"
	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// The live connection of each page (GET /live): the handler checks what
// the page names and hands the connection to the hub (package live), which
// pushes it every change it shows.

// handleLive upgrades to the page's live connection. The user comes from
// the cookie, never from the URL; the origin is checked by Accept. The URL
// names the tab, the page load, the boot the page was drawn on, and what its
// inspectors show (q-{scope}: the filter, n-{scope}: how many rows), so
// that its join draws just that. The handler returns at once: the
// connection lives on in its own goroutines, and the request (headers,
// contexts, the HTTP server's goroutine) is freed.
func (s *App) handleLive(w http.ResponseWriter, r *http.Request) error {
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
	id := Who(r)
	number, err := s.store.TabNumber(r.Context(), id.UserID, tab)
	if store.FaultOf(err) != nil {
		number = 0 // unnamed until it joins again, once the storage is back
	} else if err != nil {
		return err
	}
	bw := s.heads.WindowIn(shown, store.Browser)
	boot := s.store.Boot()
	restarted := q.Get("boot") != "" && q.Get("boot") != strconv.FormatInt(boot.Number, 10)
	drawn := templ.Join(
		s.heads.DrawPanel(store.Browser, browserScope(id).List(id.UserID).View(bw), bw, viewmodel.Viewer{UserID: id.UserID}, time.Now()),
		views.Rejoined(views.Boot(boot), restarted))

	var raw net.Conn
	ws, err := websocket.Accept(smallBuffers{w, &raw, s.metrics}, r, s.liveOpts)
	if err != nil {
		return nil // Accept has answered (e.g. 403 for a foreign origin)
	}
	s.hub.Join(live.Page{UserID: id.UserID, TabID: tab, Tab: number, ClientID: client, Windows: shown, Drawn: drawn}, ws, raw)
	return nil
}

// shownIn reads what a page's panels show from its live URL: for each
// scope, q-{scope} (its inspector's filter) and n-{scope} (how many rows,
// at least the first window, at most a scope's every key), for the scopes
// that do not show the first rows unfiltered (see viewmodel.Heads.WindowIn).
func (s *App) shownIn(q map[string][]string) (map[store.Scope]store.Window, error) {
	var shown map[store.Scope]store.Window
	for _, scope := range viewmodel.PageScopes {
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
		n := viewmodel.InspectorRows
		if rows != "" {
			var err error
			if n, err = strconv.Atoi(rows); err != nil || n < 1 {
				return nil, badRequest("n-" + string(scope) + " must be a number of rows")
			}
		}
		if err := s.CheckFilter("q-"+string(scope), filter); err != nil {
			return nil, err
		}
		if shown == nil {
			shown = map[store.Scope]store.Window{}
		}
		shown[scope] = s.heads.Window(scope, filter, min(max(n, viewmodel.InspectorRows), s.limits.KeysPerOwner))
	}
	return shown, nil
}

// Each live connection's buffers. The HTTP server's are 4 KiB each, most
// of an idle connection's memory. A page sends almost nothing (pongs, a
// close frame), so the read buffer is small; a push is one key's change,
// one frame of a KiB or two, and a write buffer that holds it whole sends
// it in one write call (a larger message goes out in a few).
const (
	liveReadBuffer  = 512
	liveWriteBuffer = 2048
)

// smallBuffers hands the WebSocket library the hijacked connection with
// small buffers instead of the HTTP server's, and keeps the socket in raw;
// with metrics, it counts the bytes written.
type smallBuffers struct {
	http.ResponseWriter
	raw     *net.Conn
	metrics *metrics.Metrics
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
	var out io.Writer = conn
	if w.metrics != nil {
		out = countedWriter{conn, w.metrics}
	}
	return conn, bufio.NewReadWriter(bufio.NewReaderSize(r, liveReadBuffer), bufio.NewWriterSize(out, liveWriteBuffer)), nil
}

// countedWriter counts what is written to a live connection's socket.
type countedWriter struct {
	io.Writer
	metrics *metrics.Metrics
}

func (w countedWriter) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	w.metrics.LiveBytes(n)
	return n, err
}
