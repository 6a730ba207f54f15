package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/storagescopes/app/internal/proctest"
	"github.com/storagescopes/app/store/redistest"
)

// TestNginxInFrontOfTwoInstances runs the README's nginx config, as it is
// written there, in front of two instances sharing Redis. It skips without
// nginx, unless NGINX_REQUIRED=1 (CI).
func TestNginxInFrontOfTwoInstances(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		msg := "nginx not found: install it with `apt-get install -y nginx` to run this test"
		if os.Getenv("NGINX_REQUIRED") == "1" {
			t.Fatal(msg + " (NGINX_REQUIRED=1)")
		}
		t.Skip(msg)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```nginx\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("no nginx config in the README")
	}
	redisURL := redistest.Start(t)
	a := startServer(t, "-redis", redisURL)
	b := startServer(t, "-redis", redisURL)
	port := freePort(t)
	conf := string(m[1])
	conf = strings.Replace(conf, "127.0.0.1:8081", a.Addr, 1)
	conf = strings.Replace(conf, "127.0.0.1:8082", b.Addr, 1)
	conf = strings.Replace(conf, "listen 8080;", fmt.Sprintf("listen 127.0.0.1:%d;", port), 1)
	dir := t.TempDir()
	full := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, conf)
	if os.Geteuid() == 0 {
		full = "user root;\n" + full
	}
	path := filepath.Join(dir, "nginx.conf")
	os.WriteFile(path, []byte(full), 0o644)
	cmd := exec.Command(bin, "-p", dir, "-c", path)
	logPath := filepath.Join(dir, "nginx.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers too
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("nginx output:\n%s", b)
		}
	})
	lb := fmt.Sprintf("http://127.0.0.1:%d", port)
	ready, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := proctest.WaitReady(ready, lb); err != nil {
		t.Fatalf("nginx: %v", err)
	}

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
	if status, body := do("PUT", "/api/storage/user/note", `"through nginx"`); status != 200 {
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
