package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/store/redistest"
)

// With RedisWait 1 a write is acknowledged only once a replica has it: the
// replica holds it the moment the write returns; with the replica gone a
// write answers ErrNoReplica (a fault, so the handlers say 503, try again)
// and Health says so; once the replica is back, writes are confirmed again.
func TestRedisWaitConfirmsWritesOnAReplica(t *testing.T) {
	primary := redistest.StartServer(t)
	replica := primary.StartReplica(t)
	s := MustOpenRedis(t, primary.URL, store.Options{Redis: store.RedisOptions{Wait: 1}})
	onReplica := mustRedisClient(t, replica.URL)
	ctx := context.Background()
	o := store.UserOwner("u")

	for i := range 50 {
		want := fmt.Sprint(i)
		if _, err := s.Apply(ctx, store.Origin{}, store.Mutation{Owner: o, Key: "k", Value: json.RawMessage(want)}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		raw, err := onReplica.HGet(ctx, redisOwnerKey(o), "k").Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := raw[len(raw)-len(want):]; got != want {
			t.Fatalf("the replica holds %q right after write %d was acknowledged, want %s", raw, i, want)
		}
	}
	if err := s.Health(ctx); err != nil {
		t.Errorf("health with the replica up: %v", err)
	}

	replica.Kill()
	_, err := s.Apply(ctx, store.Origin{}, store.Mutation{Owner: o, Key: "k", Value: json.RawMessage(`"alone"`)})
	if !errors.Is(err, store.ErrNoReplica) || store.FaultOf(err) != store.ErrNoReplica {
		t.Errorf("a write with no replica: got %v, want ErrNoReplica", err)
	}
	if err := s.Health(ctx); !errors.Is(err, store.ErrNoReplica) {
		t.Errorf("health with no replica: got %v, want ErrNoReplica", err)
	}

	if err := replica.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := replica.WaitInSync(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, store.Origin{}, store.Mutation{Owner: o, Key: "k", Value: json.RawMessage(`"back"`)}); err != nil {
		t.Errorf("a write once the replica is back: %v", err)
	}
}

// Writes from many browsers at once share rounds (their scripts, then one
// WAIT, down one connection): none is acknowledged while the replica is
// frozen, each is on the replica the moment it is acknowledged, also when
// the primary forgets its scripts (as a restarted or new primary has) in
// the middle of them.
func TestRedisWaitConfirmsConcurrentWrites(t *testing.T) {
	primary := redistest.StartServer(t)
	replica := primary.StartReplica(t)
	s := MustOpenRedis(t, primary.URL, store.Options{Redis: store.RedisOptions{Wait: 1}})
	onReplica := mustRedisClient(t, replica.URL)
	onPrimary := mustRedisClient(t, primary.URL)
	ctx := context.Background()

	var frozen atomic.Int64 // when the replica was frozen, in unix ns; 0 while it is not
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 32 {
		o := store.UserOwner(fmt.Sprint("u", w))
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				want := fmt.Sprintf(`"%d %s"`, i, strings.Repeat("x", 1000))
				began := time.Now().UnixNano()
				_, err := s.Apply(ctx, store.Origin{}, store.Mutation{Owner: o, Key: "k", Value: json.RawMessage(want)})
				// A write begun once the replica was frozen cannot have
				// reached it before it thaws.
				if at := frozen.Load(); at != 0 && began > at && err == nil {
					t.Errorf("%s's write %d was acknowledged while the replica was frozen", o, i)
					return
				}
				if err != nil {
					if !errors.Is(err, store.ErrNoReplica) {
						t.Errorf("%s, write %d: %v", o, i, err)
						return
					}
					continue
				}
				raw, err := onReplica.HGet(ctx, redisOwnerKey(o), "k").Result()
				if err != nil || !strings.HasSuffix(raw, want) {
					t.Errorf("the replica holds %.40q (%v) right after %s's write %d was acknowledged", raw, err, o, i)
					return
				}
			}
		})
	}
	for range 3 {
		time.Sleep(100 * time.Millisecond)
		onPrimary.ScriptFlush(ctx)
	}
	replica.Pause()
	time.Sleep(20 * time.Millisecond) // SIGSTOP has taken hold
	frozen.Store(time.Now().UnixNano())
	time.Sleep(400 * time.Millisecond)
	frozen.Store(0)
	replica.Resume()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
}

// A primary killed with kill -9 during a stream of writes from several
// browsers, while its replica had fallen behind (frozen, as a machine that
// stops answering), the replica then promoted: with RedisWait 1 every
// acknowledged write is on the new primary; RedisWait 0 loses what the
// replica had not received, and the test says how much.
func TestAcknowledgedWritesSurviveTheLossOfThePrimary(t *testing.T) {
	for _, wait := range []int{1, 0} {
		t.Run(fmt.Sprint("wait ", wait), func(t *testing.T) {
			primary := redistest.StartServer(t)
			replica := primary.StartReplica(t)
			s := MustOpenRedis(t, primary.URL, store.Options{Redis: store.RedisOptions{Wait: wait}})
			ctx := context.Background()
			// Each write carries 8 KiB, so that a frozen replica's socket
			// fills and the copies wait in the primary, where a kill loses them.
			pad := json.RawMessage(`"` + strings.Repeat("x", 8<<10) + `"`)

			var mu sync.Mutex
			acked := map[store.Owner]int{} // the last value acknowledged per browser
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for b := range 8 {
				o := store.UserOwner(fmt.Sprint("browser", b))
				wg.Go(func() {
					for i := 1; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := s.Apply(ctx, store.Origin{},
							store.Mutation{Owner: o, Key: "n", Value: json.RawMessage(fmt.Sprint(i))},
							store.Mutation{Owner: o, Key: "pad", Value: pad}); err != nil {
							return // the primary is gone
						}
						mu.Lock()
						acked[o] = i
						mu.Unlock()
					}
				})
			}
			time.Sleep(300 * time.Millisecond)
			replica.Pause()         // it falls behind: the copies wait in the primary
			time.Sleep(time.Second) // long enough to outgrow the sockets' buffers on a slower machine too
			primary.Kill()
			close(stop)
			wg.Wait()
			replica.Resume()
			if err := replica.Promote(); err != nil {
				t.Fatal(err)
			}
			after := MustOpenRedis(t, replica.URL, store.Options{})
			writes, lost := lostWrites(t, after, acked)
			t.Logf("-redis-wait %d: %d writes acknowledged, %d of them lost with the primary", wait, writes, lost)
			if wait > 0 && lost > 0 {
				t.Errorf("%d acknowledged writes were lost with the primary", lost)
			}
			if wait == 0 && lost == 0 {
				t.Error("-redis-wait 0 lost nothing: the replica did not fall behind, and the test shows nothing")
			}
			if writes == 0 {
				t.Error("no write was acknowledged")
			}
		})
	}
}

// BenchmarkRedisWait is a field's write on a Redis with one replica, from
// 64 goroutines at once, acknowledged by the primary alone (wait 0) or
// once the replica has it too (wait 1): what -redis-wait 1 costs.
func BenchmarkRedisWait(b *testing.B) {
	primary := redistest.StartServer(b)
	primary.StartReplica(b)
	for _, wait := range []int{0, 1} {
		b.Run(fmt.Sprint("wait=", wait), func(b *testing.B) {
			s := MustOpenRedis(b, primary.URL, store.Options{Redis: store.RedisOptions{Wait: wait}})
			ctx := context.Background()
			var users atomic.Int64
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				o := store.UserOwner(fmt.Sprint("user-", users.Add(1)))
				for i := 0; pb.Next(); i++ {
					if _, err := s.Apply(ctx, store.Origin{}, store.Mutation{Owner: o, Key: "note", Value: json.RawMessage(fmt.Sprintf(`"note %d"`, i))}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// lostWrites counts the writes acknowledged (acked: each owner's counter
// "n" went 1, 2, … up to it) and how many of them s no longer has.
func lostWrites(t *testing.T, s store.Store, acked map[store.Owner]int) (writes, lost int) {
	t.Helper()
	for o, want := range acked {
		writes += want
		got := 0
		if e, err := s.Get(context.Background(), o, "n"); err == nil {
			fmt.Sscan(string(e.Value), &got)
		}
		lost += max(0, want-got)
	}
	return writes, lost
}
