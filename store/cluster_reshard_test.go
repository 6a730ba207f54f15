package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/store/redistest"
)

// A cluster grown by a primary (and its replica) while browsers write
// through two stores (two instances): 1,024 slots move to the new primary
// one key at a time, as redis-cli's reshard moves them, half of the
// browsers' among them. Every refusal is a fault (never another
// error, which a page would show as a 500), no acknowledged write is lost,
// versions never go back, and every browser writes again afterwards.
func TestClusterGrowsWhileBrowsersWrite(t *testing.T) {
	for _, wait := range []int{0, 1} {
		t.Run(fmt.Sprint("wait ", wait), func(t *testing.T) {
			c := startClusterFor(t, wait)
			a := MustOpenRedis(t, c.URL, store.Options{Redis: store.RedisOptions{Wait: wait}})
			b := MustOpenRedis(t, c.URL, store.Options{Redis: store.RedisOptions{Wait: wait}})
			ctx := context.Background()

			const browsers = 24
			users := usersToMove(t, c, browsers)
			// A user key and a tab key in one Apply: the browser's keys, its
			// tabs and their numbers all move together.
			w := startWriting(t, []*store.Redis{a, b}, users, true, func(user, tab string, n int) []store.Mutation {
				return counter(user, n, store.Mutation{Owner: store.TabOwner(user, tab), Key: "n", Value: json.RawMessage(fmt.Sprint(n))})
			})
			time.Sleep(500 * time.Millisecond)
			start, before := time.Now(), w.Writes()
			node, err := c.Grow(1024)
			if err != nil {
				w.Stop()
				t.Fatal(err)
			}
			took, during := time.Since(start), w.Writes()-before
			time.Sleep(500 * time.Millisecond) // writes go on against the new map
			w.Stop()

			after := MustOpenRedis(t, c.URL, store.Options{})
			n, lost := lostWrites(t, after, w.Acked())
			t.Logf("-redis-wait %d: 1,024 slots moved in %s, %d writes acknowledged during it, %d refused as faults (the last: %v); %d acknowledged in all, %d lost",
				wait, took.Round(10*time.Millisecond), during, w.faults, w.fault, n, lost)
			if lost > 0 {
				t.Errorf("%d acknowledged writes were lost", lost)
			}
			w.CheckCounts(t, after, true)
			// Each Apply wrote the same n to a browser's user and tab scopes.
			for i := range browsers {
				user := users[i]
				u, uerr := after.Get(ctx, store.UserOwner(user), "n")
				tb, terr := after.Get(ctx, store.TabOwner(user, tabOf(i)), "n")
				if uerr != nil || terr != nil || string(u.Value) != string(tb.Value) {
					t.Errorf("%s's user scope holds %s (%v) and its tab %s (%v): one Apply wrote both", user, u.Value, uerr, tb.Value, terr)
				}
			}
			moved := 0
			newNode := redis.NewClient(&redis.Options{Addr: node.Addr()})
			defer newNode.Close()
			for _, user := range users {
				if newNode.Exists(ctx, "scopes:{u:"+user+"}:o:user:"+user).Val() == 1 {
					moved++
				}
			}
			t.Logf("%d of %d browsers' keys moved to the new primary", moved, browsers)
			if moved == 0 {
				t.Errorf("no browser's keys moved to the new primary")
			}
		})
	}
}

// startClusterFor starts a cluster for stores with RedisWait wait: with
// every primary's replica in sync when their writes wait for it.
func startClusterFor(t *testing.T, wait int) *redistest.Cluster {
	t.Helper()
	c := redistest.StartCluster(t)
	if wait > 0 {
		if err := c.WaitReplicated(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// usersToMove names n browsers, half of them in slots that Grow(1024) moves
// (redis-cli takes the first slots of each primary's range).
func usersToMove(t *testing.T, c *redistest.Cluster, n int) []string {
	t.Helper()
	opts, err := redis.ParseClusterURL(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClusterClient(opts)
	defer rdb.Close()
	var moving, staying []string
	for i := 0; len(moving) < n/2 || len(staying) < n-n/2; i++ {
		user := fmt.Sprint("browser", i)
		slot, err := rdb.ClusterKeySlot(context.Background(), "{u:"+user+"}").Result()
		if err != nil {
			t.Fatal(err)
		}
		if (slot < 250 || slot-5461 >= 0 && slot-5461 < 250 || slot-10923 >= 0 && slot-10923 < 250) && len(moving) < n/2 {
			moving = append(moving, user)
		} else if len(staying) < n-n/2 {
			staying = append(staying, user)
		}
	}
	return append(moving, staying...)
}

// A write to a browser whose slot is half moved (one of its keys on the new
// node, the others not yet) is refused whole by the cluster and sent again
// until the slot has moved: it goes through once the move ends, and while
// the move does not end it is answered as a fault within a second, having
// changed nothing. A read waits for the move the same way.
func TestAWriteWaitsForItsSlotToMove(t *testing.T) {
	for _, wait := range []int{0, 1} {
		t.Run(fmt.Sprint("wait ", wait), func(t *testing.T) {
			c := startClusterFor(t, wait)
			s := MustOpenRedis(t, c.URL, store.Options{Redis: store.RedisOptions{Wait: wait}})
			ctx := context.Background()
			const tab = "00000000-0000-4000-8000-000000000001"
			o := store.UserOwner("alice")
			write := func(n int) ([]store.Entry, error) {
				return s.Apply(ctx, store.Origin{UserID: "alice", TabID: tab},
					store.Mutation{Owner: o, Key: "n", Value: json.RawMessage(fmt.Sprint(n))})
			}
			first, err := write(1)
			if err != nil {
				t.Fatal(err)
			}

			move := startSlotMove(t, c, "{u:alice}")
			move.key(t, "scopes:{u:alice}:seq") // the versions' counter first: no script names it itself
			start := time.Now()
			if _, err := write(2); store.FaultOf(err) == nil {
				t.Fatalf("a write while its slot is half moved: %v, want a fault", err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("the refusal took %s", took)
			}
			if e, err := s.Get(ctx, o, "n"); err != nil || string(e.Value) != "1" {
				t.Errorf("after the refused write, n is %s (%v), want 1", e.Value, err)
			}

			// A write, and a read of an instance that has not cached alice
			// (her tab holds nothing: its key is on neither node).
			done, read := make(chan error, 1), make(chan error, 1)
			var got []store.Entry
			go func() {
				var err error
				got, err = write(3)
				done <- err
			}()
			other := MustOpenRedis(t, c.URL, store.Options{Redis: store.RedisOptions{Wait: wait}})
			go func() {
				_, err := other.View(ctx, store.TabOwner("alice", tab), store.Window{})
				read <- err
			}()
			time.Sleep(100 * time.Millisecond)
			move.finish(t)
			if err := <-done; err != nil {
				t.Fatalf("a write while its slot moved: %v", err)
			}
			if err := <-read; err != nil {
				t.Errorf("a read while its slot moved: %v", err)
			}
			if got[0].Version <= first[0].Version {
				t.Errorf("version %d after %d", got[0].Version, first[0].Version)
			}
			if e, err := s.Get(ctx, o, "n"); err != nil || string(e.Value) != "3" {
				t.Errorf("after the move, n is %s (%v), want 3", e.Value, err)
			}
		})
	}
}

// slotMove is one slot moving from its primary to another, key by key, as
// redis-cli's reshard does it (CLUSTER SETSLOT, MIGRATE).
type slotMove struct {
	rdb      *redis.ClusterClient
	slot     int64
	src, dst *redis.Client
	dstID    string
}

// startSlotMove marks the slot of tag as moving to another primary.
func startSlotMove(t *testing.T, c *redistest.Cluster, tag string) *slotMove {
	t.Helper()
	ctx := context.Background()
	opts, err := redis.ParseClusterURL(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	m := &slotMove{rdb: redis.NewClusterClient(opts)}
	t.Cleanup(func() { m.rdb.Close() })
	if m.slot, err = m.rdb.ClusterKeySlot(ctx, tag).Result(); err != nil {
		t.Fatal(err)
	}
	if m.src, err = m.rdb.MasterForKey(ctx, tag); err != nil {
		t.Fatal(err)
	}
	m.rdb.ForEachMaster(ctx, func(ctx context.Context, p *redis.Client) error {
		if p.Options().Addr != m.src.Options().Addr && m.dst == nil {
			m.dst = p
		}
		return nil
	})
	srcID := m.src.Do(ctx, "cluster", "myid").Val()
	m.dstID = m.dst.Do(ctx, "cluster", "myid").Val().(string)
	for _, step := range []error{
		m.dst.Do(ctx, "cluster", "setslot", m.slot, "importing", srcID).Err(),
		m.src.Do(ctx, "cluster", "setslot", m.slot, "migrating", m.dstID).Err(),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	return m
}

// key moves one key of the slot.
func (m *slotMove) key(t *testing.T, key string) {
	t.Helper()
	host, port, _ := strings.Cut(m.dst.Options().Addr, ":")
	if err := m.src.Migrate(context.Background(), host, port, key, 0, 5*time.Second).Err(); err != nil {
		t.Fatalf("migrate %s: %v", key, err)
	}
}

// finish moves the slot's other keys and gives the slot to its new primary.
func (m *slotMove) finish(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	keys, err := m.src.ClusterGetKeysInSlot(ctx, int(m.slot), 1000).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		m.key(t, k)
	}
	err = m.rdb.ForEachMaster(ctx, func(ctx context.Context, p *redis.Client) error {
		return p.Do(ctx, "cluster", "setslot", m.slot, "node", m.dstID).Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}
