package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// ack is one acknowledged write.
type ack struct {
	value   string
	version int64
}

// writer is one client writing its own keys in increasing order, general
// and user scope, and recording every write the server acknowledged.
type writer struct {
	id     int
	client *http.Client
	acked  map[string]ack // key -> last acknowledged write
	n      int            // acknowledged writes
	acks   atomic.Int64   // n, for another goroutine to read
}

// count is how many writes were acknowledged so far.
func (w *writer) count() int { return int(w.acks.Load()) }

func newWriter(id int) *writer {
	jar, _ := cookiejar.New(nil)
	return &writer{id: id, client: &http.Client{Jar: jar, Timeout: 5 * time.Second}, acked: map[string]ack{}}
}

// put writes scope/key = value and records it if acknowledged. An error or
// a non-2xx answer is a visible failure: nothing is recorded.
func (w *writer) put(url, scope, key, value string) error {
	req, _ := http.NewRequest("PUT", url+"/api/storage/"+scope+"/"+key, strings.NewReader(strconv.Quote(value)))
	req.Header.Set("Content-Type", "application/json")
	res, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var got struct {
		Value   string `json:"value"`
		Version int64  `json:"version"`
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		return err // an answer cut short is not an acknowledgement
	}
	w.acked[scope+"/"+key] = ack{value: got.Value, version: got.Version}
	w.n++
	w.acks.Add(1)
	return nil
}

// run writes until stop closes or the server goes away.
func (w *writer) run(url string, round int, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		scope := []string{"general", "user"}[i%2]
		key := fmt.Sprintf("w%d-k%d", w.id, i%5) // a few keys, overwritten in turn
		if err := w.put(url, scope, key, fmt.Sprintf("round %d write %d", round, i)); err != nil {
			if strings.Contains(err.Error(), "status") {
				continue
			}
			return // the server is gone
		}
	}
}

// stored is the value and version the server has for sk ("scope/key"),
// and the status of the answer.
func (w *writer) stored(t *testing.T, url, sk string) (int, ack) {
	t.Helper()
	scope, key, _ := strings.Cut(sk, "/")
	res, err := w.client.Get(url + "/api/storage/" + scope + "/" + key)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got struct {
		Value   string `json:"value"`
		Version int64  `json:"version"`
	}
	json.NewDecoder(res.Body).Decode(&got)
	return res.StatusCode, ack{value: got.Value, version: got.Version}
}

// verify checks that the server has every acknowledged write, or a newer
// one of the same key.
func (w *writer) verify(t *testing.T, url string) int {
	t.Helper()
	for sk, want := range w.acked {
		status, got := w.stored(t, url, sk)
		switch {
		case status != 200:
			t.Errorf("acknowledged %s = %q (v%d) is lost: status %d", sk, want.value, want.version, status)
		case got.version < want.version:
			t.Errorf("%s went back from v%d to v%d", sk, want.version, got.version)
		case got.version == want.version && got.value != want.value:
			t.Errorf("%s v%d = %q, want %q", sk, got.version, got.value, want.value)
		}
	}
	return len(w.acked)
}

// TestAcknowledgedWritesSurviveKill9: concurrent writers, SIGKILL at a
// random moment mid-stream, restart on the same file: every acknowledged
// write is there (or a newer one) and the file passes the integrity check.
// DURABILITY_ROUNDS sets how many times (default 10).
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	rounds := 10
	if v, err := strconv.Atoi(os.Getenv("DURABILITY_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	db := filepath.Join(t.TempDir(), "storage.db")
	args := []string{"-addr", "127.0.0.1:0", "-db", db, "-secret", testSecret, "-write-rate", "0"}
	var writers []*writer
	for i := range 8 {
		writers = append(writers, newWriter(i))
	}
	for round := range rounds {
		c := startChild(t, args...)
		// The previous rounds' acknowledged writes are all there.
		for _, w := range writers {
			w.verify(t, c.URL)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, w := range writers {
			wg.Go(func() { w.run(c.URL, round, stop) })
		}
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		c.Kill() // mid-stream: requests are in flight
		close(stop)
		wg.Wait()
		if t.Failed() {
			return
		}
	}
	c := startChild(t, args...)
	acked := 0
	for _, w := range writers {
		w.verify(t, c.URL)
		acked += w.n
	}
	c.Kill()
	checkIntegrity(t, db)
	if !t.Failed() {
		t.Logf("%d kills -9, %d acknowledged writes, 0 lost, integrity ok", rounds, acked)
	}
}

// TestSIGTERMUnderLoad: with live connections open and writes in flight,
// SIGTERM ends the process within 5 s; every write either was acknowledged
// (and is then durable) or failed visibly.
func TestSIGTERMUnderLoad(t *testing.T) {
	db := filepath.Join(t.TempDir(), "storage.db")
	args := []string{"-addr", "127.0.0.1:0", "-db", db, "-secret", testSecret, "-write-rate", "0"}
	c := startChild(t, args...)

	ws := strings.Replace(c.URL, "http", "ws", 1) + "/live?tab=6f1c2a9e-3b7d-4c1e-9a55-0d2b8f7e4c31&client="
	var conns []*websocket.Conn
	for i := range 20 {
		conn, _, err := websocket.Dial(context.Background(), ws+fmt.Sprintf("00000000-0000-4000-8000-%012d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		conns = append(conns, conn)
	}
	var writers []*writer
	for i := range 8 {
		writers = append(writers, newWriter(i))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Go(func() { w.run(c.URL, 0, stop) })
	}
	time.Sleep(200 * time.Millisecond)
	took, err := c.Terminate(5 * time.Second)
	if err != nil {
		c.Signal(syscall.SIGQUIT) // print the goroutines
		<-c.Done()
		t.Fatalf("%v with %d live connections open; output:\n%s", err, len(conns), c.Log())
	}
	close(stop)
	wg.Wait()

	c = startChild(t, args...)
	acked := 0
	for _, w := range writers {
		w.verify(t, c.URL)
		acked += w.n
	}
	if acked == 0 {
		t.Error("no write was acknowledged before the SIGTERM")
	}
	t.Logf("exited %s after SIGTERM with %d live connections open; %d acknowledged writes, all durable", took.Round(time.Millisecond), len(conns), acked)
}
