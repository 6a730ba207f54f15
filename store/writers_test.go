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
	fault  error // the last one
	stop   chan struct{}
	wg     sync.WaitGroup
}

// startWriting starts a browser per user. muts are what a browser's write
// of n changes (its user owner's "n" first); with ordered, the versions
// that write gets must grow.
func startWriting(t *testing.T, stores []*store.Redis, users []string, ordered bool, muts func(user, tab string, n int) []store.Mutation) *browsersWriting {
	w := &browsersWriting{acked: map[store.Owner]int{}, stop: make(chan struct{})}
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
				got, err := s.Apply(context.Background(), store.Origin{UserID: user, TabID: tab}, muts(user, tab, n)...)
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

// Stop stops the browsers and waits for their last writes.
func (w *browsersWriting) Stop() {
	close(w.stop)
	w.wg.Wait()
}
