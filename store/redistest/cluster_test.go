package redistest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagescopes/app/store/redistest"
)

// The helper's cluster is a real one: keys spread over its three
// primaries, and when one is killed with kill -9 its replica takes over
// with every write that reached it (WAIT 1), with no restart of anything.
func TestClusterFailsOverToAReplica(t *testing.T) {
	c := redistest.StartCluster(t)
	opts, err := redis.ParseClusterURL(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClusterClient(opts)
	defer rdb.Close()
	ctx := context.Background()

	const keys = 300
	for i := range keys {
		key := fmt.Sprint("k", i)
		// A write acknowledged once a replica has it too: WAIT counts the
		// writes of its own connection, so both go down one.
		m, err := rdb.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		var acked *redis.IntCmd
		if _, err := m.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, i, 0)
			acked = redis.NewIntCmd(ctx, "wait", 1, 5000)
			p.Process(ctx, acked)
			return nil
		}); err != nil || acked.Val() < 1 {
			t.Fatalf("set %s: %v, %d replicas have it; want 1", key, err, acked.Val())
		}
	}
	primaries, err := c.Primaries()
	if err != nil || len(primaries) != 3 {
		t.Fatalf("primaries = %d, %v; want 3", len(primaries), err)
	}
	counts := map[string]int64{}
	if err := rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		counts[m.Options().Addr] = n
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for addr, n := range counts {
		if n == 0 {
			t.Errorf("primary %s holds no key: keys do not spread", addr)
		}
	}

	victim := primaries[0]
	victim.Kill() // kill -9
	start := time.Now()
	if err := c.WaitHealthy(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("a replica took over in %s", time.Since(start).Round(10*time.Millisecond))
	rdb.ReloadState(ctx) // the slots' new owner, at once rather than at the next refresh
	for i := range keys {
		got, err := rdb.Get(ctx, fmt.Sprint("k", i)).Int()
		if err != nil || got != i {
			t.Fatalf("k%d = %d, %v after the failover; want %d", i, got, err, i)
		}
	}
}
