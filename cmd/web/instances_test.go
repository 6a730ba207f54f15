package main

import (
	"encoding/json"

	"github.com/storagescopes/app/internal/proctest"

	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/storagescopes/app/store/redistest"
)

// twoInstances starts two programs on different ports sharing one Redis.
func twoInstances(t *testing.T) (a, b *proctest.Process) {
	t.Helper()
	url := redistest.Start(t)
	args := []string{"-addr", "127.0.0.1:0", "-redis", url, "-secret", testSecret, "-write-rate", "0"}
	return startChild(t, args...), startChild(t, args...)
}

func newJarClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

// mustLive opens a live connection for page load client (a number) of the
// browser c, on the server at base, as a page does; it closes with the test.
func mustLive(t *testing.T, c *http.Client, base string, client int) *websocket.Conn {
	t.Helper()
	ws := strings.Replace(base, "http", "ws", 1) + fmt.Sprintf("/live?tab=6f1c2a9e-3b7d-4c1e-9a55-0d2b8f7e4c31&client=00000000-0000-4000-8000-%012d", client)
	conn, _, err := websocket.Dial(context.Background(), ws, &websocket.DialOptions{HTTPClient: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	conn.SetReadLimit(-1)
	return conn
}

// mustJoin reads a live page's join: the general scope's part, then the
// page's own, which ends with the storage's health. It returns both.
func mustJoin(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var join strings.Builder
	for !strings.Contains(join.String(), `hx-target="#storage-health"`) {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("the join: %v", err)
		}
		join.Write(data)
	}
	return join.String()
}

// mustMessage reads a live page's messages until one holds what, and
// returns it.
func mustMessage(t *testing.T, ctx context.Context, conn *websocket.Conn, what string) string {
	t.Helper()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("live connection: no message with %s: %v", what, err)
		}
		if strings.Contains(string(data), what) {
			return string(data)
		}
	}
}

// A browser's cookie works on any instance: it points at the same rows.
func TestInstancesShareCookiesAndData(t *testing.T) {
	a, b := twoInstances(t)
	c := newJarClient()
	put(t, c, a.URL, "user/note", `"written on A"`)
	// The jar holds the cookie for 127.0.0.1; both instances are there.
	// B's cache hears of A's write a moment after A answered it.
	waitUntil(t, "B shows A's user write", func() bool {
		_, body := fetch(t, c, b.URL+"/api/storage/user/note")
		return strings.Contains(body, "written on A")
	})
	// A delete on one instance is not brought back by the other.
	put(t, c, b.URL, "general/doomed", `1`)
	req, _ := http.NewRequest("DELETE", a.URL+"/api/storage/general/doomed", nil)
	if res, err := c.Do(req); err != nil || res.StatusCode != 204 {
		t.Fatalf("delete on A: %v %v", err, res)
	}
	put(t, c, b.URL, "general/other", `2`) // B writes the same scope again
	for _, inst := range []*proctest.Process{a, b} {
		if status, _ := fetch(t, c, inst.URL+"/api/storage/general/doomed"); status != 404 {
			t.Errorf("the deleted key is back on %s: status %d", inst.URL, status)
		}
	}
}

// Page views on both instances at once count exactly (a view is counted
// by its tab's panel, which the page's script loads).
func TestInstancesCountExactly(t *testing.T) {
	a, b := twoInstances(t)
	const perInstance, clients = 50, 8
	var wg sync.WaitGroup
	for i := range clients {
		base := []string{a.URL, b.URL}[i%2]
		wg.Go(func() {
			c := newJarClient()
			tab := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
			for range perInstance {
				status, _ := do(t, c, "POST", base+"/scopes/tab/visit", "", map[string]string{"X-Tab-ID": tab})
				if status != 200 {
					t.Errorf("tab visit: status %d", status)
					return
				}
			}
		})
	}
	wg.Wait()
	// Each instance's cache hears the other's last visits a moment after
	// they were answered: the count reaches the total, and never passes it.
	want := fmt.Sprintf(`"value":%d,`, clients*perInstance)
	var body string
	waitUntil(t, "A counts "+want, func() bool {
		_, body = fetch(t, newJarClient(), a.URL+"/api/storage/general/visits")
		var got struct{ Value int }
		if json.Unmarshal([]byte(body), &got) == nil && got.Value > clients*perInstance {
			t.Fatalf("visits = %s: more than were made", body)
		}
		return strings.Contains(body, want)
	})
}

// A write on one instance reaches a live page on the other.
func TestInstancesPushAcross(t *testing.T) {
	a, b := twoInstances(t)
	c := newJarClient()
	fetch(t, c, b.URL+"/") // the page, and the cookie
	conn := mustLive(t, c, b.URL, 1)
	msgs := make(chan string, 1000)
	go func() {
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(data)
		}
	}()
	for m := range msgs { // the join
		if strings.Contains(m, `hx-target="#storage-health"`) {
			break
		}
	}

	const writes = 100
	var took []time.Duration
	writer := newJarClient()
	for i := range writes {
		marker := fmt.Sprintf("across-%d", i)
		start := time.Now()
		put(t, writer, a.URL, "general/global_text", `"`+marker+`"`)
		for found := false; !found; {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatal("the live connection on B closed")
				}
				found = strings.Contains(m, marker)
			case <-time.After(5 * time.Second):
				t.Fatalf("write %d on A never reached the page on B", i)
			}
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	t.Logf("A to B over Redis, %d writes: p50 %s, p99 %s, max %s", writes,
		took[writes/2].Round(time.Microsecond), took[writes*99/100].Round(time.Microsecond), took[writes-1].Round(time.Microsecond))
}

// A browser-scope change (it lives in the cookie) made through one
// instance reaches the same browser's page on the other: the announcement
// crosses Redis even though nobody waits for it.
// Across instances too, a change costs what it changed: with 300 keys of
// 16 KiB in the general scope, one short change written on A reaches a page
// on B as that one key (and the key count B's cache keeps), not the scope.
func TestInstancesPushOneKeyAcross(t *testing.T) {
	a, b := twoInstances(t)
	writer := newJarClient()
	const keys = 300
	big := `"` + strings.Repeat("x", 16*1024-2) + `"`
	for i := range keys {
		put(t, writer, a.URL, fmt.Sprintf("general/filler-%03d", i), big)
	}
	c := newJarClient()
	fetch(t, c, b.URL+"/")
	conn := mustLive(t, c, b.URL, 1)
	mustJoin(t, conn) // else a join that comes after the write carries it too, whole
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	put(t, writer, a.URL, "general/global_text", `"one key across"`)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("the change never reached the page on B: %v", err)
		}
		m := string(data)
		if !strings.Contains(m, "one key across") {
			continue
		}
		if len(m) > 2048 || !strings.Contains(m, fmt.Sprintf("(%d keys)", keys+1)) {
			t.Errorf("the push across is %d bytes (want at most 2 KiB) with the count (%d keys): %.300s", len(m), keys+1, m)
		}
		return
	}
}

func TestInstancesPushBrowserScopeAcross(t *testing.T) {
	a, b := twoInstances(t)
	c := newJarClient()
	fetch(t, c, b.URL+"/")
	conn := mustLive(t, c, b.URL, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mustJoin(t, conn)
	put(t, c, a.URL, "browser/theme", `"set through A"`)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("the browser change on A never reached the page on B: %v", err)
		}
		if strings.Contains(string(data), "set through A") {
			return
		}
	}
}

// When an instance dies, its pages reconnect to another (here: the test
// plays the load balancer) and show current values.
func TestInstanceDiesPagesMoveOn(t *testing.T) {
	a, b := twoInstances(t)
	c := newJarClient()
	put(t, c, a.URL, "user/note", `"before A died"`)
	a.Kill()
	// The page's reconnect lands on B: the snapshot has the current values.
	ws := strings.Replace(b.URL, "http", "ws", 1) + "/live?tab=6f1c2a9e-3b7d-4c1e-9a55-0d2b8f7e4c31&client=00000000-0000-4000-8000-000000000002"
	conn, _, err := websocket.Dial(context.Background(), ws, &websocket.DialOptions{HTTPClient: c})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(-1)
	if !strings.Contains(mustJoin(t, conn), "before A died") {
		t.Errorf("the snapshot on B lacks the user's note")
	}
}

// Pub/sub loses what is published while an instance's subscription is
// down; when it is back, every page of that instance gets a fresh snapshot.
func TestInstanceResnapshotsAfterALostSubscription(t *testing.T) {
	redisURL := redistest.Start(t)
	b := startChild(t, "-addr", "127.0.0.1:0", "-redis", redisURL, "-secret", testSecret)
	c := newJarClient()
	fetch(t, c, b.URL+"/")
	conn := mustLive(t, c, b.URL, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mustJoin(t, conn)
	opt, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	// A change whose message was lost (written here without publishing,
	// as if it had been published while the subscription was down)...
	ver := rdb.Incr(ctx, "scopes:seq").Val()
	rdb.HSet(ctx, "scopes:o:general", "global_text", fmt.Sprintf(`%d %d "written while cut off"`, ver, time.Now().UnixMilli()))
	// ...reaches the page in the fresh snapshot sent once the subscription
	// is back.
	if err := rdb.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("no fresh snapshot after the subscription came back: %v", err)
		}
		if strings.Contains(string(data), "written while cut off") {
			return
		}
	}
}

// With Redis, a crash button crashes only the instance that served it: the
// other serves on, and the crashed one comes back on the same port with
// the shared data.
func TestInstanceCrashLeavesTheOthersServing(t *testing.T) {
	a, b := twoInstances(t)
	c := newJarClient()
	put(t, c, a.URL, "general/note", `"before the crash"`)
	boot := bootNumber(t, c, a.URL)
	if status, body := do(t, c, "POST", a.URL+"/demo/crash", "", nil); status != 202 {
		t.Fatalf("crash A: %d %s", status, body)
	}
	waitUntil(t, "B to serve A's write while A crashes", func() bool {
		_, body := fetch(t, c, b.URL+"/api/storage/general/note")
		return strings.Contains(body, "before the crash")
	})
	waitNewBoot(t, a.URL, boot)
	if _, body := fetch(t, c, a.URL+"/api/storage/general/note"); !strings.Contains(body, "before the crash") {
		t.Errorf("A after its crash: %s", body)
	}
}
