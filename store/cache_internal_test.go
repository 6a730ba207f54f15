package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// A snapshot read just before a sweep deleted its tab must not be cached
// after the sweep: the sweep arrived after the read began, so the fill is
// refused.
func TestASnapshotReadBeforeASweepIsNotCachedAfterIt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "storage.db"), Options{
		Now: func() time.Time { return now }, Expiry: Expiry{TabTTL: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	tab := TabOwner("u", "t")
	if _, err := s.Apply(ctx, Origin{}, Mutation{Owner: tab, Key: "k", Value: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	since := s.cache.readStart()
	before, err := s.list(ctx, tab) // a List that reads now and fills later
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	s.cache.fill(tab, before, since)
	snap, err := s.List(ctx, tab)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Entries) != 0 {
		t.Errorf("the swept tab still lists %v", snap.Entries)
	}
}

// A sweep that expires a user drops the cached snapshots of that user and
// its tabs, and only those: everybody else's stay cached (a sweep used to
// empty the whole cache, every ten minutes on a busy server).
func TestASweepDropsOnlyTheExpiredUsersSnapshots(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "storage.db"), Options{
		Now: func() time.Time { return now }, Expiry: Expiry{OneShot: time.Hour, UserTTL: 48 * time.Hour, TabTTL: 48 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	gone, stays := UserOwner("gone"), UserOwner("stays")
	goneTab := TabOwner("gone", "t")
	for _, o := range []Owner{gone, goneTab, stays, GeneralOwner} {
		if _, err := s.Apply(ctx, Origin{}, Mutation{Owner: o, Key: "k", Value: []byte(`1`)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.List(ctx, o); err != nil { // now cached
			t.Fatal(err)
		}
	}
	if _, err := s.Apply(ctx, Origin{}, Mutation{Owner: gone, Key: "visits", Increment: true}); err != nil { // the writer knows it is 1
		t.Fatal(err)
	}
	if err := s.Touch(ctx, "stays", "", true); err != nil { // its cookie came back
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour) // past the one-shot grace of "gone"
	if n, err := s.Sweep(ctx); err != nil || n.Users != 1 {
		t.Fatalf("sweep: %+v, %v; want one user expired", n, err)
	}
	for _, o := range []Owner{gone, goneTab} {
		if snap, err := s.List(ctx, o); err != nil || len(snap.Entries) != 0 {
			t.Errorf("%s lists %v after it expired (err %v)", o, snap.Entries, err)
		}
	}
	// The same id back later (its cookie after all) starts over.
	if e, err := s.Apply(ctx, Origin{}, Mutation{Owner: gone, Key: "visits", Increment: true}); err != nil || string(e[0].Value) != "1" {
		t.Errorf("visits of the expired user counted on to %v (err %v), want 1", e, err)
	}
	s.cache.mu.Lock()
	defer s.cache.mu.Unlock()
	for _, o := range []Owner{stays, GeneralOwner} {
		if _, ok := s.cache.m[o]; !ok {
			t.Errorf("%s's snapshot left the cache with another user's expiry", o)
		}
	}
}

// A snapshot can be read after changes that the stream delivers later (an
// instance that just subscribed, with older changes still on their way):
// they are in the snapshot already, and applying them again must not bring
// back an older value or delete a key set again since.
func TestACachedSnapshotIgnoresChangesItAlreadyHolds(t *testing.T) {
	c := newSnapCache(1<<20, 0, time.Now)
	o := UserOwner("u")
	c.fill(o, Snapshot{Version: 10, Entries: []Entry{
		{Key: "gone-and-back", Version: 9, Value: []byte(`"set again"`)},
		{Key: "k", Version: 9, Value: []byte(`"new"`)},
	}}, c.readStart())
	c.apply([]Change{{Owner: o, Op: OpDelete, Key: "gone-and-back", Version: 8}}, nil)
	c.apply([]Change{{Owner: o, Op: OpSet, Key: "k", Version: 7, Value: []byte(`"old"`)}}, nil)
	snap, ok := c.get(o)
	if !ok {
		t.Fatal("the snapshot is no longer cached")
	}
	want := map[string]string{"gone-and-back": `"set again"`, "k": `"new"`}
	got := map[string]string{}
	for _, e := range snap.Entries {
		got[e.Key] = string(e.Value)
	}
	if len(got) != len(want) || got["k"] != want["k"] || got["gone-and-back"] != want["gone-and-back"] {
		t.Errorf("after replaying changes the snapshot held: got %v, want %v", got, want)
	}
	// A change after the snapshot still applies, and the snapshot's version
	// follows its owner's changes.
	c.apply([]Change{{Owner: o, Op: OpSet, Key: "k", Version: 11, Value: []byte(`"newer"`)}}, nil)
	if snap, _ := c.get(o); len(snap.Entries) != 2 || string(snap.Entries[1].Value) != `"newer"` || snap.Version != 11 {
		t.Errorf("a change after the snapshot: got %v at version %d, want k = \"newer\" at 11", snap.Entries, snap.Version)
	}
}

// Changes of different owners may arrive in any order (a Redis Cluster's
// shards each publish their own): a fill is refused only when its own
// owner changed after the read began, whatever the versions, and while the
// stream is down every fill is refused.
func TestAFillIsCheckedByWhatArrivedAfterItsRead(t *testing.T) {
	c := newSnapCache(1<<20, 0, time.Now)
	a, b := UserOwner("a"), UserOwner("b")
	since := c.readStart()
	c.apply([]Change{{Owner: b, Op: OpSet, Key: "k", Version: 500}}, nil) // another shard, far ahead
	c.fill(a, Snapshot{Version: 7}, since)
	if _, ok := c.get(a); !ok {
		t.Error("a snapshot was refused for another owner's change")
	}
	since = c.readStart()
	c.apply([]Change{{Owner: b, Op: OpSet, Key: "k", Version: 3}}, nil) // b's own, with a small version
	c.fill(b, Snapshot{Version: 2}, since)
	if _, ok := c.get(b); ok {
		t.Error("a snapshot was cached though its owner changed after the read began")
	}
	c.down()
	since = c.readStart()
	c.fill(b, Snapshot{Version: 9}, since)
	if _, ok := c.get(b); ok {
		t.Error("a snapshot was cached while changes are being missed")
	}
	c.up()
	c.fill(b, Snapshot{Version: 9}, since) // begun while down
	if _, ok := c.get(b); ok {
		t.Error("a snapshot read while changes were missed was cached")
	}
	c.fill(b, Snapshot{Version: 9}, c.readStart())
	if _, ok := c.get(b); !ok {
		t.Error("a snapshot read once the stream was back was refused")
	}
}
