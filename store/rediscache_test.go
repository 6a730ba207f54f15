package store_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/storagescopes/app/store"
)

// Each Redis instance answers reads from snapshots it keeps current by the
// change stream. These are the rules that keeps exact, with two instances
// of the store on one redis-server, as two app instances are.

func twoRedisStores(t *testing.T, opts store.Options) (a, b *store.Redis, url string) {
	t.Helper()
	url = MustRedis(t)
	open := func() *store.Redis {
		return MustOpenRedis(t, url, opts)
	}
	return open(), open(), url
}

func valueOf(t *testing.T, s store.Store, o store.Owner, key string) (string, bool) {
	t.Helper()
	snap, err := s.List(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range snap.Entries {
		if e.Key == key {
			return string(e.Value), true
		}
	}
	return "", false
}

// A read on the instance that wrote sees the write, every time, with its
// snapshot cached and other instances writing beside it.
func TestRedisCacheReadsYourWrites(t *testing.T) {
	a, b, _ := twoRedisStores(t, store.Options{})
	o := store.UserOwner("u1")
	MustSet(t, a, o, "k", `0`)
	valueOf(t, a, o, "k") // cached from here on
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // the other instance writes the same owner meanwhile
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			MustSet(t, b, o, "other", strconv.Itoa(i))
		}
	})
	// Many at once, so that the stream lags behind the answers.
	var readers sync.WaitGroup
	for r := range 16 {
		readers.Go(func() {
			key := fmt.Sprintf("k%d", r)
			for i := 1; i <= 100; i++ {
				want := strconv.Itoa(i)
				MustSet(t, a, o, key, want)
				if got, _ := valueOf(t, a, o, key); got != want {
					t.Errorf("%s write %d: read back %q", key, i, got)
					return
				}
				if e, err := a.Get(context.Background(), o, key); err != nil || string(e.Value) != want {
					t.Errorf("%s write %d: Get = %s, %v", key, i, e.Value, err)
					return
				}
			}
		})
	}
	readers.Wait()
	close(stop)
	wg.Wait()
}

// Another instance sees a change no later than it is told of it: a read in
// its push already holds it. Deletes and clears stay gone.
func TestRedisCacheOtherInstanceSeesTheChangeByItsPush(t *testing.T) {
	a, b, _ := twoRedisStores(t, store.Options{})
	o := store.GeneralOwner
	told := make(chan store.Change, 100)
	b.Subscribe(func(cs []store.Change) {
		for _, c := range cs {
			told <- c
		}
	})
	valueOf(t, b, o, "k") // B caches the general scope
	next := func(what string) store.Change {
		t.Helper()
		select {
		case c := <-told:
			return c
		case <-time.After(5 * time.Second):
			t.Fatalf("B was not told of %s", what)
		}
		return store.Change{}
	}
	MustSet(t, a, o, "k", `"first"`)
	next("the set")
	if got, _ := valueOf(t, b, o, "k"); got != `"first"` {
		t.Errorf("B after the push: %s", got)
	}
	if _, err := a.Delete(context.Background(), o, "k", store.Origin{}, 0); err != nil {
		t.Fatal(err)
	}
	next("the delete")
	if got, ok := valueOf(t, b, o, "k"); ok {
		t.Errorf("a deleted key came back on B: %s", got)
	}
	MustSet(t, a, o, "x", `1`)
	MustSet(t, a, o, "y", `2`)
	next("x")
	next("y")
	if _, _, err := a.Clear(context.Background(), o, store.Origin{}); err != nil {
		t.Fatal(err)
	}
	next("the clear")
	if snap, _ := b.List(context.Background(), o); len(snap.Entries) != 0 {
		t.Errorf("B after a clear: %v", entriesOf(snap))
	}
}

// A lost subscription misses changes: the cache is dropped, and no read
// after the instance is back shows what was cached before.
func TestRedisCacheLostSubscriptionLeavesNothingStale(t *testing.T) {
	a, b, url := twoRedisStores(t, store.Options{})
	o := store.GeneralOwner
	resync := make(chan struct{}, 10)
	b.Subscribe(func(cs []store.Change) {
		for _, c := range cs {
			if c.Op == store.OpResync {
				resync <- struct{}{}
			}
		}
	})
	MustSet(t, a, o, "k", `"before"`)
	for { // until B has it cached
		if got, _ := valueOf(t, b, o, "k"); got == `"before"` {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// B's subscription is cut, and the change made meanwhile is published
	// to nobody on B's side.
	rdb := mustRedisClient(t, url)
	if err := rdb.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	MustSet(t, a, o, "k", `"while cut off"`)
	select {
	case <-resync:
	case <-time.After(10 * time.Second):
		t.Fatal("no resync")
	}
	if got, _ := valueOf(t, b, o, "k"); got != `"while cut off"` {
		t.Errorf("B after it is back: %s, want the change it missed", got)
	}
}

// A tab evicted over the cap on one instance is gone from the other's
// cache too, and comes back as a new tab.
func TestRedisCacheEvictedTabIsGoneEverywhere(t *testing.T) {
	a, b, _ := twoRedisStores(t, store.Options{Limits: store.Limits{TabsPerUser: 2}})
	ctx := context.Background()
	first := store.TabOwner("u", "t1")
	MustSet(t, a, first, "k", `"mine"`)
	for { // B has it cached
		if got, _ := valueOf(t, b, first, "k"); got == `"mine"` {
			break
		}
		time.Sleep(time.Millisecond)
	}
	n1, err := b.TabNumber(ctx, "u", "t1")
	if err != nil {
		t.Fatal(err)
	}
	MustSet(t, a, store.TabOwner("u", "t2"), "k", `1`)
	MustSet(t, a, store.TabOwner("u", "t3"), "k", `1`) // evicts t1
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := valueOf(t, b, first, "k"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the evicted tab's key is still on B")
		}
		time.Sleep(time.Millisecond)
	}
	if _, ok := valueOf(t, a, first, "k"); ok {
		t.Error("the evicted tab's key is still on A, which evicted it")
	}
	if n, _ := a.TabNumber(ctx, "u", "t1"); n == n1 {
		t.Errorf("the evicted tab came back as Tab %d, its old number", n)
	}
}

// Counters stay exact with 64 writers split over two instances, and both
// read the same count after.
func TestRedisCacheExactCountersOverTwoInstances(t *testing.T) {
	a, b, _ := twoRedisStores(t, store.Options{})
	o := store.GeneralOwner
	const writers, each = 64, 20
	var wg sync.WaitGroup
	for i := range writers {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for range each {
				if _, err := increment(context.Background(), s, o, "n"); err != nil {
					t.Error(err)
					return
				}
				valueOf(t, s, o, "n") // reads between, from the cache
			}
		})
	}
	wg.Wait()
	want := fmt.Sprint(writers * each)
	for name, s := range map[string]*store.Redis{"A": a, "B": b} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, _ := valueOf(t, s, o, "n")
			if got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s reads %s, want %s", name, got, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
}
