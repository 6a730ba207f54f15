package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// serveBaseline is what the app is measured against, in the same run:
//
//   - GET /?size=N answers N bytes of a fixed fragment, as a bare net/http
//     handler would;
//   - GET /ws is a bare coder/websocket broadcast server, written as the
//     library's own chat example is (a buffered channel and a writing
//     goroutine per connection), and POST /broadcast sends its body to every
//     connection;
//   - /debug/pprof/ is the profiler, for its memory statistics.
func serveBaseline(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// The profiler's line first: the tool reads it once it sees the URL.
	fmt.Printf("pprof at=http://%s/debug/pprof/\n", ln.Addr())
	fmt.Printf("url=http://%s\n", ln.Addr())
	body := []byte(strings.Repeat(`<div class="field">Saved</div>`, 1<<12))
	b := &broadcaster{subs: map[*subscriber]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.URL.Query().Get("size"), &n)
		n = min(max(n, 1), len(body))
		io.Copy(io.Discard, r.Body)
		// As the app does: the length up front, so no chunking.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(body[:n])
	})
	mux.HandleFunc("GET /ws", b.subscribe)
	mux.HandleFunc("POST /broadcast", func(w http.ResponseWriter, r *http.Request) {
		msg, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		b.publish(msg)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// broadcaster is the bare WebSocket server: every message published goes
// to every connection.
type broadcaster struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	msgs chan []byte
}

func (b *broadcaster) subscribe(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := c.CloseRead(r.Context())
	s := &subscriber{msgs: make(chan []byte, 16)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}()
	for {
		select {
		case msg := <-s.msgs:
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := c.Write(wctx, websocket.MessageText, msg)
			cancel()
			if err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (b *broadcaster) publish(msg []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.msgs <- msg:
		default: // a subscriber that fell 16 messages behind misses one
		}
	}
}
