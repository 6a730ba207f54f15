package store_test

// More of the conformance suite (conformance_test.go): tab copies and the
// cap on tabs.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/storagescopes/app/store"
)

func TestCopyTabMakesAnIndependentCopy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
		ctx := context.Background()
		orig, dup := store.TabOwner("u", "orig"), store.TabOwner("u", "dup")
		MustSet(t, s, orig, "tab_data", `"hello"`)
		if err := s.CopyTab(ctx, "u", "orig", "dup"); err != nil {
			t.Fatal(err)
		}
		if v, _ := get(t, s, dup, "tab_data"); v != `"hello"` {
			t.Errorf("copy's tab_data = %s, want \"hello\"", v)
		}
		MustSet(t, s, dup, "tab_data", `"changed in copy"`)
		if v, _ := get(t, s, orig, "tab_data"); v != `"hello"` {
			t.Errorf("original's tab_data = %s after the copy changed, want \"hello\"", v)
		}
		if err := s.CopyTab(ctx, "u", "orig", "dup"); !errors.Is(err, store.ErrTabExists) {
			t.Errorf("second copy onto the same tab: got %v, want ErrTabExists", err)
		}
		if v, _ := get(t, s, dup, "tab_data"); v != `"changed in copy"` {
			t.Errorf("copy's tab_data = %s after a refused copy, want it unchanged", v)
		}
	})
}

func TestOldestTabIsEvictedOverTheCap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s := be.open(store.Options{Now: c.Now, Limits: store.Limits{TabsPerUser: 2}})
		MustSet(t, s, store.TabOwner("u", "t1"), "k", `1`)
		c.Advance(time.Second)
		MustSet(t, s, store.TabOwner("u", "t2"), "k", `2`)
		c.Advance(time.Second)
		MustSet(t, s, store.TabOwner("u", "t3"), "k", `3`)
		if _, ok := get(t, s, store.TabOwner("u", "t1"), "k"); ok {
			t.Errorf("oldest tab t1 still has rows over the cap of 2")
		}
		for _, tab := range []string{"t2", "t3"} {
			if _, ok := get(t, s, store.TabOwner("u", tab), "k"); !ok {
				t.Errorf("tab %s lost its rows", tab)
			}
		}
	})
}

// Duplicating the least recently used tab at the cap copies it first; the
// eviction that makes room may take the original, never the copy's rows.
func TestCopyOfTheOldestTabAtTheCapKeepsItsRows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s := be.open(store.Options{Now: c.Now, Limits: store.Limits{TabsPerUser: 2}})
		MustSet(t, s, store.TabOwner("u", "t1"), "k", `"from t1"`)
		c.Advance(time.Second)
		MustSet(t, s, store.TabOwner("u", "t2"), "k", `2`)
		c.Advance(time.Second)
		if err := s.CopyTab(context.Background(), "u", "t1", "t3"); err != nil {
			t.Fatal(err)
		}
		if v, _ := get(t, s, store.TabOwner("u", "t3"), "k"); v != `"from t1"` {
			t.Errorf("the copy of t1 holds %q, want \"from t1\"", v)
		}
	})
}

func TestCopyIntoACachedEmptyTab(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
		ctx := context.Background()
		MustSet(t, s, store.TabOwner("u", "orig"), "k", `"v"`)
		if snap, _ := s.List(ctx, store.TabOwner("u", "dup")); len(snap.Entries) != 0 {
			t.Fatal("new tab not empty")
		}
		if err := s.CopyTab(ctx, "u", "orig", "dup"); err != nil {
			t.Fatal(err)
		}
		if snap, _ := s.List(ctx, store.TabOwner("u", "dup")); len(snap.Entries) != 1 {
			t.Errorf("after the copy the tab lists %v, want the copied key", snap.Entries)
		}
	})
}

// A user and a tab are touched at most once an hour; a request asks first
// (TouchDue) and hands over only a touch that would write.
func TestTouchIsDueOnlyWhenItWouldWrite(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s := be.open(store.Options{Now: c.Now})
		MustSet(t, s, store.TabOwner("person", "tab"), "k", `1`)
		if !s.TouchDue("person", "tab", true) {
			t.Error("a returning cookie never touched: not due")
		}
		if err := s.Touch(context.Background(), "person", "tab", true); err != nil {
			t.Fatal(err)
		}
		c.Advance(30 * time.Minute)
		if s.TouchDue("person", "tab", true) {
			t.Error("due again 30 minutes after its touch")
		}
		if !s.TouchDue("person", "other-tab", true) {
			t.Error("a tab never touched: not due")
		}
		c.Advance(31 * time.Minute)
		if !s.TouchDue("person", "tab", true) {
			t.Error("not due an hour after its touch")
		}
	})
}
