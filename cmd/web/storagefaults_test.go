package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/store/redistest"
)

// The faults of a real machine: a disk that fills, a database another
// process locks, a Redis that stops. Each answers the status and words a
// user can act on, changes nothing, keeps every acknowledged write, and
// passes by itself.

const testTab = "6f1c2a9e-3b7d-4c1e-9a55-0d2b8f7e4c31"

// answer is a response as a test looks at it.
type answer struct {
	status     int
	body       string
	retryAfter string
	took       time.Duration
}

func ask(t *testing.T, c *http.Client, method, url, body string, header map[string]string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, string(b), res.Header.Get("Retry-After"), time.Since(start)}
}

var (
	jsonBody = map[string]string{"Content-Type": "application/json"}
	htmxForm = map[string]string{"Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true", "X-Tab-ID": testTab}
)

// checkIntegrity opens the database as the server does and runs SQLite's
// integrity check.
func checkIntegrity(t *testing.T, db string) {
	t.Helper()
	st, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(context.Background()); err != nil {
		t.Error(err)
	}
}

// holdLockEnv makes this test binary a second process that holds the
// database's write lock (BEGIN IMMEDIATE) until its standard input closes.
const holdLockEnv = "HOLD_SQLITE_LOCK"

func holdLock(path string) {
	db, err := sql.Open("sqlite", "file:"+path)
	if err == nil {
		_, err = db.Exec("BEGIN IMMEDIATE")
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	db.Exec("ROLLBACK")
	os.Exit(0)
}

func TestDatabaseLocked(t *testing.T) {
	db := filepath.Join(t.TempDir(), "storage.db")
	s := startChild(t, "-addr", "127.0.0.1:0", "-db", db, "-secret", testSecret, "-write-rate", "0")
	c := newJarClient()
	put(t, c, s.URL, "user/note", `"written before the lock"`)

	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), holdLockEnv+"="+db)
	release, _ := holder.StdinPipe()
	out, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Process.Kill()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("the second process did not take the lock: %q", line)
	}

	locked := ask(t, c, "PUT", s.URL+"/api/storage/user/during", `"refused"`, jsonBody)
	if locked.status != 503 || locked.retryAfter == "" ||
		!strings.Contains(locked.body, "another process holds the database's lock") {
		t.Errorf("write under another's lock: %d Retry-After=%q %s", locked.status, locked.retryAfter, locked.body)
	}
	// Reads do not wait for the lock.
	read := ask(t, c, "GET", s.URL+"/api/storage/user/note", "", nil)
	if read.status != 200 || !strings.Contains(read.body, "written before the lock") {
		t.Errorf("read under another's lock: %d %s", read.status, read.body)
	}
	if a := ask(t, c, "GET", s.URL+"/healthz", "", nil); a.status != 200 || !strings.Contains(a.body, "lock") {
		t.Errorf("/healthz under another's lock: %d %q", a.status, a.body)
	}

	release.Close()
	holder.Wait()
	put(t, c, s.URL, "user/after", `"written after the lock"`)
	if a := ask(t, c, "GET", s.URL+"/api/storage/user/during", "", nil); a.status != 404 {
		t.Errorf("the refused write left something: %d %s", a.status, a.body)
	}
	t.Logf("write refused with 503 after %v (the busy timeout); a read took %v", locked.took.Round(time.Millisecond), read.took.Round(time.Millisecond))
}

func TestRedisLost(t *testing.T) {
	rs := redistest.StartServer(t)
	s := startChild(t, "-addr", "127.0.0.1:0", "-redis", rs.URL, "-secret", testSecret, "-write-rate", "0", "-metrics", "127.0.0.1:0")
	c := newJarClient()
	put(t, c, s.URL, "user/note", `"written before Redis stopped"`)
	ask(t, c, "POST", s.URL+"/scopes/tab/visit", "", htmxForm)

	// A page that is open has its live connection.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, _ := url.Parse(s.URL)
	ws := "ws://" + u.Host + "/live?tab=" + testTab + "&client=00000000-0000-4000-8000-000000000003"
	conn, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPClient: c})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(-1)
	mustMessage(t, ctx, conn, `data-health="ok"`)

	rs.Stop()
	lost := ask(t, c, "PUT", s.URL+"/api/storage/user/during", `"refused"`, jsonBody)
	if lost.status != 503 || lost.retryAfter == "" || lost.body != `{"error":"Storage is unavailable; nothing was changed"}`+"\n" {
		t.Errorf("write without Redis: %d Retry-After=%q %s", lost.status, lost.retryAfter, lost.body)
	}
	if a := ask(t, c, "POST", s.URL+"/scopes/user/entries", "key=fresh&value=%221%22", htmxForm); a.status != 503 || a.body != "Storage is unavailable; nothing was changed" {
		t.Errorf("htmx write without Redis: %d %q", a.status, a.body)
	}
	// A browser navigation gets a page that says so and reloads itself.
	page := ask(t, c, "GET", s.URL+"/", "", map[string]string{"Accept": "text/html"})
	if page.status != 503 || !strings.Contains(page.body, `data-testid="error-page"`) ||
		!strings.Contains(page.body, "Storage is unavailable") || !strings.Contains(page.body, `http-equiv="refresh"`) {
		t.Errorf("page without Redis: %d %s", page.status, page.body)
	}
	if a := ask(t, c, "GET", s.URL+"/healthz", "", nil); a.status != 503 {
		t.Errorf("/healthz without Redis: %d %q", a.status, a.body)
	}
	mustMessage(t, ctx, conn, `data-health="unavailable"`) // the open page says so

	restarted := time.Now()
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	// Back: the page is told, and reads its scopes again.
	mustMessage(t, ctx, conn, `data-health="ok"`)
	mustMessage(t, ctx, conn, "written before Redis stopped")
	recovered := time.Since(restarted)
	put(t, c, s.URL, "user/after", `"written after Redis came back"`)
	if a := ask(t, c, "GET", s.URL+"/api/storage/user/note", "", nil); a.status != 200 {
		t.Errorf("acknowledged write lost across the stop: %d", a.status)
	}
	if a := ask(t, c, "GET", s.URL+"/api/storage/user/during", "", nil); a.status != 404 {
		t.Errorf("the refused write left something: %d %s", a.status, a.body)
	}
	// The operator's metrics tell the story too.
	m := scrape(t, metricsURL(t, s.Log()))
	node := strings.TrimSuffix(strings.TrimPrefix(rs.URL, "redis://"), "/0")
	for _, series := range []string{`scopes_redis_errors_total{node="` + node + `"}`, "scopes_redis_resubscriptions_total",
		`scopes_http_requests_total{code="503",method="PUT",route="/api/storage/{scope}/{key}"}`} {
		if m[series] < 1 {
			t.Errorf("%s = %v after Redis stopped and came back, want at least 1", series, m[series])
		}
	}
	for _, line := range strings.Split(s.Log(), "\n") {
		if strings.HasPrefix(line, "redis:") {
			t.Errorf("go-redis logged around the app's logger: %s", line)
		}
	}
	t.Logf("write refused with 503 in %v; page in %v; the open page had its scopes again %v after Redis started",
		lost.took.Round(time.Millisecond), page.took.Round(time.Millisecond), recovered.Round(time.Millisecond))
}

// With -redis-wait 1 and its replica gone, a write is not confirmed: 503
// with Retry-After and words that say so (never 500), /healthz says
// degraded and an open page says "No replica: not saving"; once the
// replica is back, the page says so and writes are confirmed again, with
// no restart.
func TestRedisReplicaLost(t *testing.T) {
	rs := redistest.StartServer(t)
	replica := rs.StartReplica(t)
	s := startChild(t, "-addr", "127.0.0.1:0", "-redis", rs.URL, "-redis-wait", "1", "-secret", testSecret, "-write-rate", "0")
	c := newJarClient()
	put(t, c, s.URL, "user/note", `"confirmed by the replica"`)
	// An open page shows the storage's state.
	fetch(t, c, s.URL+"/")
	conn := mustLive(t, c, s.URL, 1)
	mustJoin(t, conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	replica.Kill()
	a := ask(t, c, "PUT", s.URL+"/api/storage/user/note", `"not confirmed"`, jsonBody)
	if a.status != 503 || a.retryAfter == "" || !strings.Contains(a.body, "Not confirmed: no replica of the storage confirmed the write") {
		t.Errorf("write without a replica: %d Retry-After=%q %s", a.status, a.retryAfter, a.body)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		h := ask(t, c, "GET", s.URL+"/healthz", "", nil)
		if h.status == 200 && strings.HasPrefix(h.body, "degraded: too few replicas") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz without a replica: %d %q", h.status, h.body)
		}
	}

	mustMessage(t, ctx, conn, `data-health="no-replica" hidden>No replica: not saving<`)

	if err := replica.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := replica.WaitInSync(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	mustMessage(t, ctx, conn, `data-health="ok"`)
	put(t, c, s.URL, "user/note", `"confirmed again"`)
}
