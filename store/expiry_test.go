package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/storagescopes/app/store"
)

// clock is a settable time for the sweep tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustSweep(t *testing.T, s *store.SQLite) store.Swept {
	t.Helper()
	n, err := s.Sweep(context.Background())
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return n
}

func has(t *testing.T, s store.Store, o store.Owner) bool {
	t.Helper()
	_, ok := get(t, s, o, "k")
	return ok
}

func TestSweepForgetsOneShotVisitorsIdleTabsAndIdleUsers(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, _ := MustOpen(t, store.Options{Now: c.Now, Expiry: store.Expiry{
		TabTTL: 6 * time.Hour, UserTTL: 48 * time.Hour, OneShot: 2 * time.Hour, Every: time.Hour}})
	ctx := context.Background()

	// A person: writes, and the cookie comes back a minute later.
	MustSet(t, s, store.UserOwner("person"), "k", `1`)
	MustSet(t, s, store.TabOwner("person", "old-tab"), "k", `1`)
	c.Advance(time.Minute)
	if err := s.Touch(ctx, "person", "", true); err != nil {
		t.Fatal(err)
	}
	// A bot: one request, never seen again.
	MustSet(t, s, store.UserOwner("bot"), "k", `1`)
	MustSet(t, s, store.TabOwner("bot", "t"), "k", `1`)

	c.Advance(3 * time.Hour)
	MustSet(t, s, store.TabOwner("person", "new-tab"), "k", `1`)
	n := mustSweep(t, s)
	if has(t, s, store.UserOwner("bot")) || has(t, s, store.TabOwner("bot", "t")) {
		t.Errorf("the one-shot visitor is still there after the grace")
	}
	if !has(t, s, store.UserOwner("person")) || !has(t, s, store.TabOwner("person", "old-tab")) {
		t.Errorf("the returning person lost rows too early")
	}
	if n.Users != 1 || n.Rows != 2 {
		t.Errorf("swept %+v, want 1 user and 2 rows", n)
	}

	c.Advance(4 * time.Hour) // old-tab idle 7h > 6h; new-tab idle 4h
	mustSweep(t, s)
	if has(t, s, store.TabOwner("person", "old-tab")) {
		t.Errorf("the idle tab is still there after the tab TTL")
	}
	if !has(t, s, store.TabOwner("person", "new-tab")) || !has(t, s, store.UserOwner("person")) {
		t.Errorf("rows in use were swept")
	}

	// Reads keep the user alive, but write its last access at most hourly:
	// a touch 30 minutes after the last one writes nothing.
	if err := s.Touch(ctx, "person", "", true); err != nil { // t0+7h01m: written
		t.Fatal(err)
	}
	c.Advance(30 * time.Minute)
	if err := s.Touch(ctx, "person", "", true); err != nil { // not written
		t.Fatal(err)
	}
	c.Advance(48*time.Hour - 20*time.Minute) // 48h10m after the written touch, 47h40m after the other
	mustSweep(t, s)
	if has(t, s, store.UserOwner("person")) || has(t, s, store.TabOwner("person", "new-tab")) {
		t.Errorf("the idle user is still there after the user TTL (or the second touch was written)")
	}
}

func TestSweepDeletesInBatches(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, _ := MustOpen(t, store.Options{Now: c.Now, Expiry: store.Expiry{OneShot: time.Hour}})
	const bots = 1200 // more than one batch
	for i := range bots {
		MustSet(t, s, store.UserOwner(itoa(i)), "k", `1`)
	}
	c.Advance(2 * time.Hour)
	if n := mustSweep(t, s); n.Users != bots {
		t.Errorf("swept %d users, want %d", n.Users, bots)
	}
}

func itoa(i int) string { return time.Duration(i).String() }

// A cookie that comes back before its user has any row (a client that only
// read at first) still counts as returning once the user writes: it is not
// forgotten with the one-shot visitors.
func TestAReturningUserWhoseFirstWriteCameLaterIsNotOneShot(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, _ := MustOpen(t, store.Options{Now: c.Now, Expiry: store.Expiry{OneShot: 2 * time.Hour, UserTTL: 48 * time.Hour}})
	ctx := context.Background()
	if err := s.Touch(ctx, "reader", "", true); err != nil { // no row yet
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	MustSet(t, s, store.UserOwner("reader"), "k", `1`)
	c.Advance(time.Minute)
	if err := s.Touch(ctx, "reader", "", true); err != nil {
		t.Fatal(err)
	}
	c.Advance(3 * time.Hour)
	mustSweep(t, s)
	if !has(t, s, store.UserOwner("reader")) {
		t.Errorf("a returning user was forgotten as a one-shot visitor")
	}
}
