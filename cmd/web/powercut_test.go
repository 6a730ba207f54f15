//go:build linux

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/storagescopes/app/internal/powercut"
	"github.com/storagescopes/app/store"
)

// TestPowerCut runs the server on a file system that throws away what was
// not fsynced when the power goes (internal/powercut), cuts the power while
// clients stream writes, and starts the server again on what survived.
// Under -sync full every acknowledged write survives every cut; under
// -sync normal some do not, which shows that the cuts are real: the same
// harness can fail. POWERCUT_ROUNDS sets the cuts per mode (default 20).
func TestPowerCut(t *testing.T) {
	rounds := 20
	if v, err := strconv.Atoi(os.Getenv("POWERCUT_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	t.Run("full", func(t *testing.T) {
		r := powerCuts(t, store.SyncFull, rounds)
		for _, l := range r.lost {
			t.Errorf("lost in a power cut: %s", l)
		}
		t.Logf("-sync full: %s", r)
	})
	t.Run("normal", func(t *testing.T) {
		r := powerCuts(t, store.SyncNormal, rounds)
		if len(r.lost) == 0 {
			t.Errorf("-sync normal lost no acknowledged write in %d cuts: the cuts drop nothing, so the full run proves nothing", r.cuts)
		}
		t.Logf("-sync normal: %s", r)
	})
}

// cutResult is what a run of power cuts saw.
type cutResult struct {
	cuts, acked int
	lost        []string // acknowledged writes gone after a cut, one per key and cut
	dropped     powercut.CutStats
}

func (r cutResult) String() string {
	return fmt.Sprintf("%d cuts, %d acknowledged writes, %d lost (keys whose last acknowledged write was gone), %d writes and %d truncates (%d bytes) not fsynced dropped",
		r.cuts, r.acked, len(r.lost), r.dropped.Writes, r.dropped.Truncates, r.dropped.Bytes)
}

// powerCuts runs rounds of: start the server on the power-cut mount, check
// what the clients had acknowledged before the last cut, stream writes from
// several clients, kill -9 the server mid-stream and cut the power. At the
// end the database file must pass SQLite's integrity check.
func powerCuts(t *testing.T, mode store.Sync, rounds int) cutResult {
	backing, mnt := t.TempDir(), t.TempDir()
	fsys := powercut.MustMount(t, backing, mnt)
	args := []string{"-addr", "127.0.0.1:0", "-db", filepath.Join(mnt, "storage.db"), "-secret", testSecret,
		"-write-rate", "0", "-sync", string(mode)}
	var writers []*writer
	for i := range 8 {
		writers = append(writers, newWriter(i))
	}
	var r cutResult
	check := func(url string) {
		for _, w := range writers {
			r.lost = append(r.lost, w.lostAcks(t, url)...)
		}
	}
	for round := range rounds {
		c := startChild(t, args...)
		check(c.URL)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, w := range writers {
			wg.Go(func() { w.run(c.URL, round, stop) })
		}
		// Cut while writes stream: once this round has acknowledged some,
		// at a random moment after.
		waitAcks(t, writers, 20)
		time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
		c.Kill()
		close(stop)
		wg.Wait()
		stats, err := fsys.Cut()
		if err != nil {
			t.Fatal(err)
		}
		r.cuts++
		r.dropped.Writes += stats.Writes
		r.dropped.Truncates += stats.Truncates
		r.dropped.Bytes += stats.Bytes
		if t.Failed() {
			return r
		}
	}
	c := startChild(t, args...)
	check(c.URL)
	for _, w := range writers {
		r.acked += w.n
	}
	// The file as a power cut leaves it, read straight from the backing
	// folder.
	c.Kill()
	if _, err := fsys.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(backing, "storage.db"), store.Options{SQLite: store.SQLiteOptions{Sync: mode}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(context.Background()); err != nil {
		t.Error(err)
	}
	return r
}

// waitAcks waits until the writers have acknowledged n more writes.
func waitAcks(t *testing.T, writers []*writer, n int) {
	t.Helper()
	total := func() int {
		sum := 0
		for _, w := range writers {
			sum += w.count()
		}
		return sum
	}
	want := total() + n
	for deadline := time.Now().Add(10 * time.Second); total() < want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d writes acknowledged in 10 s", total()-want+n, n)
		}
	}
}

// lostAcks is verify for a file system that may lose writes: it returns
// the keys whose last acknowledged write is gone (missing, or an older
// version), and takes what the server has as acknowledged from now on, so
// that each loss is counted once. A wrong value under the acknowledged
// version is never a loss but damage: an error in any mode.
func (w *writer) lostAcks(t *testing.T, url string) []string {
	t.Helper()
	var lost []string
	for sk, want := range w.acked {
		status, got := w.stored(t, url, sk)
		switch {
		case status == 404:
			lost = append(lost, fmt.Sprintf("%s = %q (v%d) is missing", sk, want.value, want.version))
			delete(w.acked, sk)
		case status != 200:
			t.Errorf("GET %s: status %d, want 200", sk, status)
		case got.version < want.version:
			lost = append(lost, fmt.Sprintf("%s went back from v%d to v%d", sk, want.version, got.version))
			w.acked[sk] = got
		case got.version == want.version && got.value != want.value:
			t.Errorf("%s v%d = %q, want %q", sk, got.version, got.value, want.value)
		}
	}
	return lost
}
