package store_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/store/redistest"
)

// MustRedis starts a redis-server of its own for the test.
func MustRedis(tb testing.TB) string { return redistest.Start(tb) }

// MustOpenRedis opens a Redis store on url, closed when the test ends.
func MustOpenRedis(tb testing.TB, url string, opts store.Options) *store.Redis {
	tb.Helper()
	s, err := store.OpenRedis(context.Background(), url, opts)
	if err != nil {
		tb.Fatalf("open redis store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// mustRedisClient is a plain client of the Redis at url, to look past the
// store.
func mustRedisClient(tb testing.TB, url string) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(opt)
	tb.Cleanup(func() { c.Close() })
	return c
}

// redisOwnerKey is where the Redis store keeps an owner's keys on one
// Redis.
func redisOwnerKey(o store.Owner) string { return redisKeyOf(o, false) }

// redisKeyOf is where the Redis store keeps an owner's keys, on a cluster
// under the owner's hash tag.
func redisKeyOf(o store.Owner, cluster bool) string {
	p := "scopes:"
	if cluster && o.Scope == store.General {
		p += "{g}:"
	} else if cluster {
		p += "{u:" + o.UserID + "}:"
	}
	return p + redisOwnerKeyIn(o)
}

// redisOwnerKeyIn is an owner's key after the prefix.
func redisOwnerKeyIn(o store.Owner) string {
	switch o.Scope {
	case store.User:
		return "o:user:" + o.UserID
	case store.Tab:
		return "o:tab:" + o.UserID + ":" + o.TabID
	}
	return "o:general"
}

// mustUniversalClient is a plain client of the Redis, or the Redis
// Cluster, at url.
func mustUniversalClient(tb testing.TB, url string, cluster bool) redis.UniversalClient {
	tb.Helper()
	if !cluster {
		return mustRedisClient(tb, url)
	}
	opt, err := redis.ParseClusterURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClusterClient(opt)
	tb.Cleanup(func() { c.Close() })
	return c
}

// The tests share one Redis Cluster (six processes take seconds to
// start): each test that uses it starts on an empty one.
var (
	clusterOnce sync.Once
	cluster     *redistest.Cluster
	clusterDir  string
	clusterErr  error
)

// mustCluster is the shared Redis Cluster's URL, emptied for this test.
func mustCluster(tb testing.TB) string {
	tb.Helper()
	clusterOnce.Do(func() {
		if clusterDir, clusterErr = os.MkdirTemp("", "redis-cluster-"); clusterErr != nil {
			return
		}
		cluster, clusterErr = redistest.NewCluster(clusterDir)
	})
	if clusterErr != nil {
		if os.Getenv("REDIS_REQUIRED") != "1" && errors.Is(clusterErr, exec.ErrNotFound) {
			tb.Skip(clusterErr)
		}
		tb.Fatal(clusterErr)
	}
	c := mustUniversalClient(tb, cluster.URL, true).(*redis.ClusterClient)
	if err := c.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		return m.FlushAll(ctx).Err()
	}); err != nil {
		tb.Fatal(err)
	}
	return cluster.URL
}

// TestMain stops the shared Redis Cluster once every test has run.
func TestMain(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.Kill()
	}
	if clusterDir != "" {
		os.RemoveAll(clusterDir)
	}
	os.Exit(code)
}

// A change published by a script decodes, whole, into what the write
// answered, with versions beyond what a double holds exactly (Lua's numbers
// are doubles, and cjson writes them with 14 digits).
func TestRedisPublishedChangesDecodeExactly(t *testing.T) {
	url := MustRedis(t)
	ctx := context.Background()
	big := int64(1)<<53 + 1
	if err := mustRedisClient(t, url).Set(ctx, "scopes:seq", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	s := MustOpenRedis(t, url, store.Options{})
	got := make(chan store.Change, 10)
	s.Subscribe(func(cs []store.Change) {
		for _, c := range cs {
			got <- c
		}
	})
	tab := store.TabOwner("u", "t")
	e, err := set(ctx, s, tab, "k", `"v"`, "page-1")
	if err != nil {
		t.Fatal(err)
	}
	if e.Version != big+1 {
		t.Errorf("the write answered version %d, want %d", e.Version, big+1)
	}
	select {
	case c := <-got:
		if c.Owner != tab || c.Op != store.OpSet || c.Key != "k" || c.Version != e.Version || c.Origin.ClientID != "page-1" {
			t.Errorf("published %+v, want a set of %s/k at version %d from page-1", c, tab, e.Version)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change published")
	}
}

// Redis forgets by TTLs: a new user lives for the one-shot grace, a user
// whose cookie came back for the user TTL, a tab for the tab TTL.
func TestRedisExpiryByTTL(t *testing.T) {
	url := MustRedis(t)
	ctx := context.Background()
	exp := store.Expiry{TabTTL: 3 * time.Hour, UserTTL: 48 * time.Hour, OneShot: 2 * time.Hour}
	s := MustOpenRedis(t, url, store.Options{Expiry: exp})
	MustSet(t, s, store.UserOwner("u"), "k", `1`)
	MustSet(t, s, store.TabOwner("u", "t"), "k", `1`)

	opt, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ttl := func(key string) time.Duration { return rdb.PTTL(ctx, "scopes:"+key).Val() }
	within := func(got, want time.Duration) bool { return got > want-time.Minute && got <= want }
	if got := ttl("o:user:u"); !within(got, exp.OneShot) {
		t.Errorf("a new user's TTL = %s, want the one-shot grace %s", got, exp.OneShot)
	}
	if got := ttl("o:tab:u:t"); !within(got, exp.TabTTL) {
		t.Errorf("a tab's TTL = %s, want %s", got, exp.TabTTL)
	}
	if err := s.Touch(ctx, "u", "", true); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"o:user:u", "m:u", "tabs:u"} {
		if got := ttl(key); !within(got, exp.UserTTL) {
			t.Errorf("%s TTL after the cookie came back = %s, want %s", key, got, exp.UserTTL)
		}
	}
}

// Pub/sub loses what is sent while it is down: after the subscription
// comes back, the subscriber is told to resync.
func TestRedisResyncAfterALostSubscription(t *testing.T) {
	url := MustRedis(t)
	ctx := context.Background()
	s := MustOpenRedis(t, url, store.Options{})
	resync := make(chan struct{}, 10)
	s.Subscribe(func(cs []store.Change) {
		for _, c := range cs {
			if c.Op == store.OpResync {
				resync <- struct{}{}
			}
		}
	})
	opt, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resync:
	case <-time.After(10 * time.Second):
		t.Fatal("no resync after the subscription was killed")
	}
	// And changes flow again.
	got := make(chan store.Change, 10)
	s.Subscribe(func(cs []store.Change) {
		for _, c := range cs {
			got <- c
		}
	})
	MustSet(t, s, store.GeneralOwner, "after", `1`)
	select {
	case c := <-got:
		if c.Key != "after" {
			t.Errorf("change = %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported after the resync")
	}
}

// A cookie that comes back before its user has a row is told once, not with
// every request, and again once the user is written: the user then lives
// for the user TTL, not the one-shot grace.
func TestRedisReturningReaderKeptOnceWritten(t *testing.T) {
	url := MustRedis(t)
	ctx := context.Background()
	exp := store.Expiry{TabTTL: 3 * time.Hour, UserTTL: 48 * time.Hour, OneShot: 2 * time.Hour}
	s := MustOpenRedis(t, url, store.Options{Expiry: exp})
	if err := s.Touch(ctx, "reader", "", true); err != nil { // no row yet
		t.Fatal(err)
	}
	MustSet(t, s, store.UserOwner("reader"), "k", `1`)
	if err := s.Touch(ctx, "reader", "", true); err != nil {
		t.Fatal(err)
	}
	got := mustRedisClient(t, url).PTTL(ctx, "scopes:o:user:reader").Val()
	if got <= exp.UserTTL-time.Minute || got > exp.UserTTL {
		t.Errorf("a returning reader's TTL after its first write = %s, want the user TTL %s", got, exp.UserTTL)
	}
}
