package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// A snapshot read just before a sweep deleted its tab must not be cached
// after the sweep: the sweep takes a version, so the fill is refused.
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
	if _, err := s.Set(ctx, tab, "k", []byte(`1`), ""); err != nil {
		t.Fatal(err)
	}
	before, err := s.list(ctx, tab) // a List that reads now and fills later
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	s.cache.fill(tab, before)
	snap, err := s.List(ctx, tab)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Entries) != 0 {
		t.Errorf("the swept tab still lists %v", snap.Entries)
	}
}
