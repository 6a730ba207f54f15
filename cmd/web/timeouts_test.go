package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/storagescopes/app/handlers"
	"github.com/storagescopes/app/scopes"
	"github.com/storagescopes/app/store"
)

// The server's timeouts cut a client that trickles its request, and never
// a live connection, however long it stays open.
func TestTimeoutsCutSlowClientsNotLiveConnections(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := handlers.New(handlers.Config{Config: scopes.Config{Store: st, Secrets: []string{testSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	short := timeouts{readHeader: 200 * time.Millisecond, read: 300 * time.Millisecond, write: 300 * time.Millisecond, idle: 300 * time.Millisecond}
	srv := newHTTPServer(h, short, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	// A client that sends half a request header and stalls is cut.
	slow, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n"))
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(slow); err != nil {
		t.Errorf("the stalled client was not cut by the server: %v", err)
	}

	// A live connection outlives every timeout and still gets pushes.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	c.Get(base + "/")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+
		"/live?tab=6f1c2a9e-3b7d-4c1e-9a55-0d2b8f7e4c31&client=00000000-0000-4000-8000-000000000004",
		&websocket.DialOptions{HTTPClient: c})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(-1)
	mustJoin(t, conn)
	time.Sleep(time.Second) // longer than every timeout above
	req, _ := http.NewRequest("PUT", base+"/api/storage/general/global_text", strings.NewReader(`"still live"`))
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode >= 300 {
		t.Fatalf("PUT: %v %v", err, res)
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("the live connection was cut after the timeouts: %v", err)
		}
		if strings.Contains(string(data), "still live") {
			return
		}
	}
}
