package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagescopes/app/store/redistest"
)

// Two instances on a real Redis Cluster (one given the cluster's URL, the
// other only one node's, which it finds is part of a cluster): a browser's
// data written through one reads back through the other, page views count
// exactly, a write on one reaches a live page on the other, and the keys
// spread over every primary.
func TestInstancesOnACluster(t *testing.T) {
	c := redistest.StartCluster(t)
	args := []string{"-addr", "127.0.0.1:0", "-secret", testSecret, "-write-rate", "0"}
	a := startChild(t, append(args, "-redis", c.URL)...)
	b := startChild(t, append(args, "-redis", c.Nodes[3].URL)...)

	t.Run("data crosses", func(t *testing.T) {
		cl := newJarClient()
		put(t, cl, a.URL, "user/note", `"written on A"`)
		// B's cache hears of A's write a moment after A answered it.
		waitUntil(t, "B shows A's user write", func() bool {
			_, body := fetch(t, cl, b.URL+"/api/storage/user/note")
			return strings.Contains(body, "written on A")
		})
	})

	t.Run("page views count exactly", func(t *testing.T) {
		const perInstance, clients = 30, 8
		var wg sync.WaitGroup
		for i := range clients {
			base := []string{a.URL, b.URL}[i%2]
			wg.Go(func() {
				cl := newJarClient()
				tab := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
				for range perInstance {
					if status, body := do(t, cl, "POST", base+"/scopes/tab/visit", "", map[string]string{"X-Tab-ID": tab}); status != 200 {
						t.Errorf("tab visit: %d %s", status, body)
						return
					}
				}
				_, body := fetch(t, cl, base+"/api/storage/user/visits")
				if want := fmt.Sprintf(`"value":%d`, perInstance); !strings.Contains(body, want) {
					t.Errorf("a browser's visits = %s, want %s", body, want)
				}
			})
		}
		wg.Wait()
		// A's cache hears of B's last visits a moment after B answered
		// them: the count reaches the total, and never passes it.
		want := fmt.Sprintf(`"value":%d,`, clients*perInstance)
		waitUntil(t, "A counts "+want, func() bool {
			_, body := fetch(t, newJarClient(), a.URL+"/api/storage/general/visits")
			var got struct{ Value int }
			if json.Unmarshal([]byte(body), &got) == nil && got.Value > clients*perInstance {
				t.Fatalf("visits = %s: more than were made", body)
			}
			return strings.Contains(body, want)
		})
	})

	t.Run("pushes cross", func(t *testing.T) {
		cl := newJarClient()
		fetch(t, cl, b.URL+"/")
		conn := mustLive(t, cl, b.URL, 1)
		mustJoin(t, conn)
		writer := newJarClient()
		for i := range 20 {
			marker := fmt.Sprintf("across-the-cluster-%d", i)
			put(t, writer, a.URL, "general/global_text", `"`+marker+`"`)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			for {
				_, data, err := conn.Read(ctx)
				if err != nil {
					cancel()
					t.Fatalf("write %d on A never reached the page on B: %v", i, err)
				}
				if strings.Contains(string(data), marker) {
					break
				}
			}
			cancel()
		}
	})

	t.Run("keys spread over every primary", func(t *testing.T) {
		// Sixty browsers of their own: the chance that one primary has none
		// of their slots is (2/3)^60 each.
		for range 60 {
			put(t, newJarClient(), a.URL, "user/spread", `1`)
		}
		opts, err := redis.ParseClusterURL(c.URL)
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClusterClient(opts)
		defer rdb.Close()
		var mu sync.Mutex
		held := map[string]int64{}
		if err := rdb.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
			n, err := m.DBSize(ctx).Result()
			mu.Lock()
			held[m.Options().Addr] = n
			mu.Unlock()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for addr, n := range held {
			if n == 0 {
				t.Errorf("primary %s holds no key: %v", addr, held)
			}
		}
	})

	t.Run("pushes cross after the channel's node fails", func(t *testing.T) {
		// The instances' subscriptions are on the primary of the channel's
		// slot: killed, both subscribe again on its replacement by
		// themselves, and a page joined before the failover still hears
		// every change after it.
		opts, err := redis.ParseClusterURL(c.URL)
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClusterClient(opts)
		defer rdb.Close()
		m, err := rdb.MasterForKey(context.Background(), "scopes:changes")
		if err != nil {
			t.Fatal(err)
		}
		var victim *redistest.Server
		for _, n := range c.Nodes {
			if n.Addr() == m.Options().Addr {
				victim = n
			}
		}
		cl := newJarClient()
		fetch(t, cl, b.URL+"/")
		conn := mustLive(t, cl, b.URL, 2)
		mustJoin(t, conn)
		victim.Kill()
		if err := c.WaitHealthy(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		defer func() { // back, as a replica
			if err := victim.Restart(); err != nil {
				t.Error(err)
			}
		}()
		writer := newJarClient()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		got := make(chan string, 100)
		go func() {
			for {
				_, data, err := conn.Read(ctx)
				if err != nil {
					close(got)
					return
				}
				got <- string(data)
			}
		}()
		start := time.Now()
		for i := 0; ; i++ {
			marker := fmt.Sprintf("after-the-failover-%d", i)
			if a := ask(t, writer, "PUT", a.URL+"/api/storage/general/global_text", `"`+marker+`"`, jsonBody); a.status >= 300 {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			select {
			case msg, ok := <-got:
				for ok && !strings.Contains(msg, marker) {
					select {
					case msg, ok = <-got:
					case <-time.After(300 * time.Millisecond):
						ok = false
					}
				}
				if ok {
					t.Logf("pushes cross again %s after the failover", time.Since(start).Round(10*time.Millisecond))
					return
				}
			case <-time.After(300 * time.Millisecond):
			}
			if ctx.Err() != nil {
				t.Fatal("no write on A reached the page on B within 20 s of the failover")
			}
		}
	})
}

// A primary killed with kill -9 three times (a different one each time,
// each back as a replica) while browsers write through two instances with
// -redis-wait 1: every answer is 200 or 503 with Retry-After (never a 500),
// writes resume by themselves, and every acknowledged write is there at the
// end. The answers seen and the time without writes are logged.
func TestClusterFailoverAnswersAndLosesNothing(t *testing.T) {
	c := redistest.StartCluster(t)
	args := []string{"-addr", "127.0.0.1:0", "-secret", testSecret, "-write-rate", "0", "-redis", c.URL, "-redis-wait", "1"}
	a, b := startChild(t, args...), startChild(t, args...)

	var mu sync.Mutex
	acked := map[int]int{}    // the last value acknowledged, per browser
	statuses := map[int]int{} // every answer's status, counted
	clients := map[int]*http.Client{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 8 {
		base := []string{a.URL, b.URL}[i%2]
		cl := newJarClient()
		clients[i] = cl
		wg.Go(func() {
			for n := 1; ; {
				select {
				case <-stop:
					return
				default:
				}
				a := ask(t, cl, "PUT", base+"/api/storage/user/n", fmt.Sprint(n), jsonBody)
				mu.Lock()
				statuses[a.status]++
				if a.status == 200 || a.status == 201 {
					acked[i] = n
					n++
				} else if a.status != 503 || a.retryAfter == "" {
					t.Errorf("a write during a failover: %d Retry-After=%q %s", a.status, a.retryAfter, a.body)
				}
				mu.Unlock()
				if a.status != 200 {
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, v := range acked {
			n += v
		}
		return n
	}
	// allMoved says every browser had a write acknowledged since before.
	allMoved := func(before map[int]int) bool {
		mu.Lock()
		defer mu.Unlock()
		for i := range clients {
			if acked[i] <= before[i] {
				return false
			}
		}
		return true
	}
	for round := range 3 {
		time.Sleep(500 * time.Millisecond)
		// With -redis-wait 1 the promoted replica's slots take writes once
		// it has a replica again: the killed node, back (FailOver starts it).
		var before map[int]int
		killed, err := c.FailOver(round, 0, func() {
			mu.Lock()
			before = maps.Clone(acked)
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); !allMoved(before); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: writes did not resume within 30 s", round+1)
			}
		}
		t.Logf("round %d: every browser's writes went through again %s after the kill", round+1, time.Since(killed).Round(10*time.Millisecond))
	}
	close(stop)
	wg.Wait()
	var lost int
	for i, want := range acked {
		_, body := fetch(t, clients[i], a.URL+"/api/storage/user/n")
		if !strings.Contains(body, fmt.Sprintf(`"value":%d,`, want)) {
			lost++
			t.Errorf("browser %d: %s, want its last acknowledged value %d", i, body, want)
		}
	}
	t.Logf("writes acknowledged: %d; answers: %v; browsers that lost their last acknowledged write: %d", total(), statuses, lost)
}
