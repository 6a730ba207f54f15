package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/storagescopes/app/internal/nginx"
	"github.com/storagescopes/app/store/redistest"
)

// TestNginxInFrontOfTwoInstances runs the app's nginx config (internal/nginx/scopes.conf), as it is
// written there, in front of two instances sharing Redis. It skips without
// nginx, unless NGINX_REQUIRED=1 (CI).
func TestNginxInFrontOfTwoInstances(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		msg := "nginx not found: install it with `apt-get install -y nginx` to run this test"
		if os.Getenv("NGINX_REQUIRED") == "1" {
			t.Fatal(msg + " (NGINX_REQUIRED=1)")
		}
		t.Skip(msg)
	}
	redisURL := redistest.Start(t)
	a := startServer(t, "-redis", redisURL)
	b := startServer(t, "-redis", redisURL)
	n, err := nginx.Start(context.Background(), t.TempDir(), fmt.Sprintf("127.0.0.1:%d", freePort(t)), []string{a.Addr, b.Addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("nginx output:\n%s", n.Log())
		}
	})
	lb := n.URL

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	// Requests through nginx reach either instance; the cookie works on both.
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, lb+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		var sb strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := res.Body.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return res.StatusCode, sb.String()
	}
	if status, body := do("PUT", "/api/storage/user/note", `"through nginx"`); status >= 300 {
		t.Fatalf("PUT through nginx: %d %s", status, body)
	}
	for range 4 { // round robin: both instances answer
		if _, body := do("GET", "/api/storage/user/note", ""); !strings.Contains(body, "through nginx") {
			t.Fatalf("GET through nginx: %s", body)
		}
	}
	// The live connection goes through nginx (upgrade headers) and gets
	// pushes made through nginx.
	ws := strings.Replace(lb, "http", "ws", 1) + "/live?tab=6f1c2a9e-3b7d-4c1e-9a55-0d2b8f7e4c31&client=00000000-0000-4000-8000-000000000009"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPClient: c})
	if err != nil {
		t.Fatalf("WebSocket through nginx: %v", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(-1)
	if _, _, err := conn.Read(ctx); err != nil { // the snapshot
		t.Fatal(err)
	}
	do("PUT", "/api/storage/general/global_text", `"pushed through nginx"`)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("no push through nginx: %v", err)
		}
		if strings.Contains(string(data), "pushed through nginx") {
			break
		}
	}
	// One instance dies: nginx sends the requests to the other.
	a.Kill()
	for range 4 {
		if status, body := do("GET", "/api/storage/user/note", ""); status != 200 || !strings.Contains(body, "through nginx") {
			t.Errorf("with one instance down: %d %s", status, body)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
