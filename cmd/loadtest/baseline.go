package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// serveBaseline is what the app is measured against, in the same run:
//
//   - any other request is read whole and answered with the answer PUT
//     /answer holds: the app's own answer to the scenario measured (its
//     status, headers and body), as a bare net/http handler would send it;
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
	srv := &http.Server{Handler: newBaseline(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// newBaseline is the baseline's handler.
func newBaseline() http.Handler {
	var current atomic.Pointer[answer]
	current.Store(&answer{Status: http.StatusOK})
	b := &broadcaster{subs: map[*subscriber]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a := current.Load()
		io.Copy(io.Discard, r.Body)
		h := w.Header()
		for k, v := range a.Header {
			h[k] = v
		}
		// As the app does: the length up front, so no chunking.
		h["Content-Length"] = a.length
		w.WriteHeader(a.Status)
		w.Write(a.Body)
	})
	mux.HandleFunc("PUT /answer", func(w http.ResponseWriter, r *http.Request) {
		var a answer
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			http.Error(w, "an answer: {status, header, body}", http.StatusBadRequest)
			return
		}
		a.length = []string{strconv.Itoa(len(a.Body))}
		current.Store(&a)
		w.WriteHeader(http.StatusNoContent)
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
	return mux
}

// answer is what the bare handler sends: the app's answer to one
// scenario's request, less what a server adds itself (Date) or the
// baseline sets (Content-Length).
type answer struct {
	Status int         `json:"status"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"body"`
	length []string
}

// answerLike is res, read whole, as the bare handler is to send it. A
// cookie the app set is left out: the bare handler would set it on every
// answer, which the app does not.
func answerLike(res *http.Response) (answer, error) {
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return answer{}, err
	}
	h := res.Header.Clone()
	for _, k := range []string{"Date", "Content-Length", "Set-Cookie"} {
		delete(h, k)
	}
	return answer{Status: res.StatusCode, Header: h, Body: body}, nil
}

func (a answer) json() string {
	b, _ := json.Marshal(a) // a status, a header and bytes: nothing that fails
	return string(b)
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
