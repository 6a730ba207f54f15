package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/storagescopes/app/internal/nginx"
	"github.com/storagescopes/app/internal/proctest"
	"github.com/storagescopes/app/internal/testcert"
	"github.com/storagescopes/app/store/redistest"
)

// TestNginxInFrontOfTwoInstances runs the app's nginx config (internal/nginx/scopes.conf), as it is
// written there, in front of two instances sharing Redis. It skips without
// nginx, unless NGINX_REQUIRED=1 (CI).
func TestNginxInFrontOfTwoInstances(t *testing.T) {
	needNginx(t)
	redisURL := redistest.Start(t)
	a := startServer(t, "-redis", redisURL)
	b := startServer(t, "-redis", redisURL)
	lb := startNginx(t, []string{a.Addr, b.Addr}, nil).URL

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

// needNginx skips a test without nginx, or fails it in CI.
func needNginx(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err != nil {
		msg := "nginx not found: install it with `apt-get install -y nginx` to run this test"
		if os.Getenv("NGINX_REQUIRED") == "1" {
			t.Fatal(msg + " (NGINX_REQUIRED=1)")
		}
		t.Skip(msg)
	}
}

// startNginx starts nginx in front of upstreams (with TLS when files are
// given), stopped when t ends and its output logged if t failed.
func startNginx(t *testing.T, upstreams []string, files *nginx.TLS) *nginx.Nginx {
	t.Helper()
	n, err := nginx.Start(context.Background(), t.TempDir(), fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t)), upstreams, files)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("nginx output:\n%s", n.Log())
		}
	})
	return n
}

// TestNginxWithTLSInFront runs internal/nginx/scopes-tls.conf, as written,
// terminating TLS in front of an instance that trusts it (-trusted-proxies
// 127.0.0.1/32): the cookie is Secure and __Host-named, writes and the live
// connection (wss://) go through. In front of an instance that trusts no
// proxy, the same X-Forwarded-Proto changes nothing.
func TestNginxWithTLSInFront(t *testing.T) {
	needNginx(t)
	ca, err := testcert.New()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, _, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := &nginx.TLS{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	os.WriteFile(files.CertFile, cert, 0o600)
	os.WriteFile(files.KeyFile, key, 0o600)
	for _, tc := range []struct {
		name        string
		flags       []string
		cookie      string
		secure, hts bool
	}{
		{"trusted", []string{"-trusted-proxies", "127.0.0.1/32"}, "__Host-scopes", true, false},
		{"untrusted", nil, "scopes", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.flags...)
			n := startNginx(t, []string{s.Addr}, files)
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
			res, err := c.Get(n.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			cookies := res.Cookies()
			if res.StatusCode != 200 || len(cookies) != 1 || cookies[0].Name != tc.cookie || cookies[0].Secure != tc.secure {
				t.Fatalf("the page through nginx: %d, cookies %v; want %s, Secure %v", res.StatusCode, cookies, tc.cookie, tc.secure)
			}
			if !tc.secure {
				return
			}
			req, _ := http.NewRequest("PUT", n.URL+"/api/storage/user/note", strings.NewReader(`"over TLS"`))
			req.Header.Set("Content-Type", "application/json")
			if res, err := c.Do(req); err != nil || res.StatusCode >= 300 {
				t.Fatalf("PUT through nginx: %v %v", res, err)
			}
			ws := strings.Replace(n.URL, "https", "wss", 1) + "/live?tab=6f1c2a9e-3b7d-4c1e-9a55-0d2b8f7e4c31&client=00000000-0000-4000-8000-000000000001"
			conn, _, err := websocket.Dial(context.Background(), ws, &websocket.DialOptions{HTTPClient: c})
			if err != nil {
				t.Fatalf("the live connection over wss through nginx: %v", err)
			}
			defer conn.CloseNow()
			conn.SetReadLimit(-1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				_, data, err := conn.Read(ctx)
				if err != nil {
					t.Fatalf("the join over wss: %v", err)
				}
				if strings.Contains(string(data), "over TLS") {
					break
				}
			}
		})
	}
}
