package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/storagescopes/app/store"
)

// browsersWriting is browsers writing while a test breaks or changes the
// Redis under them: each writes its counter "n" (1, 2, …) from its tab,
// through one of the stores in turn, until Stop. A write refused as a fault
// is tried again after a moment; any other error fails the test, since a
// page would show it as a 500.
type browsersWriting struct {
	mu     sync.Mutex
	acked  map[store.Owner]int // each user owner's last n acknowledged
	writes int                 // acknowledged in all
	faults int
	fault  error               // the last one
	tried  map[store.Owner]int // writes refused as faults, by user owner (they may have run)
	stop   chan struct{}
	wg     sync.WaitGroup
}

// startWriting starts a browser per user. muts are what a browser's write
// of n changes (its user owner's "n" first); each write also increments its
// user owner's "count", which tells a write that ran twice. With ordered,
// the versions that write gets must grow.
func startWriting(t *testing.T, stores []*store.Redis, users []string, ordered bool, muts func(user, tab string, n int) []store.Mutation) *browsersWriting {
	w := &browsersWriting{acked: map[store.Owner]int{}, tried: map[store.Owner]int{}, stop: make(chan struct{})}
	for i, user := range users {
		s := stores[i%len(stores)]
		o := store.UserOwner(user)
		tab := tabOf(i)
		w.wg.Go(func() {
			var version int64
			for n := 1; ; {
				select {
				case <-w.stop:
					return
				default:
				}
				count := store.Mutation{Owner: o, Key: "count", Value: json.RawMessage("0"), Increment: true}
				got, err := s.Apply(context.Background(), store.Origin{UserID: user, TabID: tab}, append(muts(user, tab, n), count)...)
				w.mu.Lock()
				switch {
				case err == nil:
					if ordered && got[0].Version <= version {
						t.Errorf("%s: write %d got version %d after %d", o, n, got[0].Version, version)
					}
					version = got[0].Version
					w.writes++
					w.acked[o] = n
					n++
				case store.FaultOf(err) != nil:
					w.faults++
					w.tried[o]++
					w.fault = err
				default:
					t.Errorf("%s, write %d: %v", o, n, err)
				}
				w.mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	return w
}

// tabOf is the tab the i-th browser writes from.
func tabOf(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

// counter is a browser's write of n to its user scope, and more if given.
func counter(user string, n int, more ...store.Mutation) []store.Mutation {
	return append([]store.Mutation{{Owner: store.UserOwner(user), Key: "n", Value: json.RawMessage(fmt.Sprint(n))}}, more...)
}

// Acked is each user owner's last n acknowledged so far.
func (w *browsersWriting) Acked() map[store.Owner]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.acked)
}

// Writes is how many writes were acknowledged so far.
func (w *browsersWriting) Writes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}

// CheckCounts checks each browser's "count" in s against its writes: never
// more than were tried (a write that ran twice), and with exact none fewer
// than were acknowledged.
func (w *browsersWriting) CheckCounts(t *testing.T, s store.Store, exact bool) {
	t.Helper()
	for o, n := range w.acked {
		var got int
		if e, err := s.Get(context.Background(), o, "count"); err == nil {
			fmt.Sscan(string(e.Value), &got)
		}
		if got > n+w.tried[o] {
			t.Errorf("%s counted %d writes, but only %d were acknowledged and %d refused: some ran twice", o, got, n, w.tried[o])
		}
		if exact && got < n {
			t.Errorf("%s counted %d writes, but %d were acknowledged", o, got, n)
		}
	}
}

// Stop stops the browsers and waits for their last writes.
func (w *browsersWriting) Stop() {
	close(w.stop)
	w.wg.Wait()
}
