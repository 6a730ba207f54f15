package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/storagescopes/app/migrations"
	"github.com/storagescopes/app/store"
)

// mustTab is a tab's number.
func mustTab(t *testing.T, s store.Store, user, tab string) int {
	t.Helper()
	n, err := s.TabNumber(context.Background(), user, tab)
	if err != nil {
		t.Fatalf("tab number of %s/%s: %v", user, tab, err)
	}
	return n
}

// A browser's tabs are numbered in the order they appear, per browser,
// never twice while the user exists (an evicted tab's number is not given
// again), a copy of a tab gets the next one, and the numbers survive a
// restart.
func TestTabsAreNumberedPerBrowserInOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s := be.open(store.Options{Now: c.Now, Limits: store.Limits{TabsPerUser: 3}})
		ctx := context.Background()
		next := func(user, tab string, want int) {
			t.Helper()
			c.Advance(time.Second)
			if got := mustTab(t, s, user, tab); got != want {
				t.Errorf("%s/%s is Tab %d, want Tab %d", user, tab, got, want)
			}
		}
		next("alice", "a", 1)
		next("alice", "b", 2)
		next("bob", "x", 1)   // numbered per browser
		next("alice", "a", 1) // asked again: the same
		// A write from a tab numbers it too.
		if _, err := s.Apply(ctx, store.Origin{UserID: "alice", TabID: "c"},
			store.Mutation{Owner: store.GeneralOwner, Key: "k", Value: json.RawMessage(`1`)}); err != nil {
			t.Fatal(err)
		}
		next("alice", "c", 3)
		if err := s.CopyTab(ctx, "alice", "c", "d"); err != nil { // evicts the least recently used: a
			t.Fatal(err)
		}
		next("alice", "d", 4)
		next("alice", "a", 5) // evicted, then back: a new tab, a new number
		s.Close()
		s = be.open(store.Options{Now: c.Now, Limits: store.Limits{TabsPerUser: 3}})
		next("alice", "d", 4)
		next("alice", "e", 6)
	})
}

// Every value keeps who changed it last: the browser, its tab's number, or
// the API; the change reports it with the page load; it survives a
// restart.
func TestValuesKeepTheirOrigin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
		ctx := context.Background()
		got := make(chan store.Change, 10)
		s.Subscribe(func(cs []store.Change) {
			for _, c := range cs {
				got <- c
			}
		})
		mustTab(t, s, "u", "first")
		page := store.Origin{UserID: "u", TabID: "second", ClientID: "page-1"}
		api := store.Origin{UserID: "v", TabID: "ignored", API: true}
		e, err := s.Apply(ctx, page, store.Mutation{Owner: store.GeneralOwner, Key: "from-page", Value: json.RawMessage(`1`)})
		if err != nil {
			t.Fatal(err)
		}
		want := store.Origin{UserID: "u", Tab: 2}
		if e[0].Origin != want {
			t.Errorf("the write answered origin %+v, want %+v", e[0].Origin, want)
		}
		if _, err := s.Apply(ctx, api, store.Mutation{Owner: store.UserOwner("v"), Key: "from-api", Value: json.RawMessage(`2`)}); err != nil {
			t.Fatal(err)
		}
		// Two owners' changes: on a Redis Cluster their slots' streams are
		// not ordered with each other, so each is matched by its key.
		wantChanges := map[string]store.Origin{"from-page": {UserID: "u", Tab: 2, ClientID: "page-1"},
			"from-api": {UserID: "v", API: true}}
		for range len(wantChanges) {
			select {
			case c := <-got:
				if want, ok := wantChanges[c.Key]; !ok || c.Origin != want {
					t.Errorf("the change of %q reported origin %+v, want %+v", c.Key, c.Origin, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a change was not reported")
			}
		}
		check := func(when string) {
			t.Helper()
			for _, c := range []struct {
				o    store.Owner
				key  string
				want store.Origin
			}{
				{store.GeneralOwner, "from-page", store.Origin{UserID: "u", Tab: 2}},
				{store.UserOwner("v"), "from-api", store.Origin{UserID: "v", API: true}},
			} {
				e, err := s.Get(ctx, c.o, c.key)
				if err != nil {
					t.Fatal(err)
				}
				snap, err := s.List(ctx, c.o)
				if err != nil {
					t.Fatal(err)
				}
				if e.Origin != c.want || len(snap.Entries) != 1 || snap.Entries[0].Origin != c.want {
					t.Errorf("%s: %s/%s is by %+v (listed %+v), want %+v", when, c.o, c.key, e.Origin, snap.Entries, c.want)
				}
			}
		}
		check("at once")
		s.Close()
		s = be.open(store.Options{})
		check("after a restart")
	})
}

// A write that names the version it was based on is refused, whole and
// with the key as it is now, when someone changed the key since.
func TestWritesBasedOnAnOldVersionAreRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
		ctx := context.Background()
		o := store.GeneralOwner
		mine := store.Origin{UserID: "u", TabID: "t"}
		setIf := func(key, value string, ifVersion int64) ([]store.Entry, error) {
			return s.Apply(ctx, mine, store.Mutation{Owner: o, Key: key, Value: json.RawMessage(value), IfVersion: ifVersion})
		}
		first, err := setIf("k", `"first"`, store.Absent) // must be new: it is
		if err != nil {
			t.Fatal(err)
		}
		theirs := MustSet(t, s, o, "k", `"theirs"`)
		for _, c := range []struct {
			name      string
			ifVersion int64
		}{{"an old version", first[0].Version}, {"absent, but it exists", store.Absent}, {"a version never held", theirs.Version + 100}} {
			_, err := setIf("k", `"mine"`, c.ifVersion)
			var conflict *store.ConflictError
			if !errors.As(err, &conflict) || !errors.Is(err, store.ErrConflict) {
				t.Fatalf("%s: got %v, want a *ConflictError", c.name, err)
			}
			if string(conflict.Current.Value) != `"theirs"` || conflict.Current.Version != theirs.Version {
				t.Errorf("%s: the refusal holds %s v%d, want \"theirs\" v%d", c.name, conflict.Current.Value, conflict.Current.Version, theirs.Version)
			}
		}
		// Refused with others, all or nothing.
		_, err = s.Apply(ctx, mine,
			store.Mutation{Owner: o, Key: "other", Value: json.RawMessage(`1`)},
			store.Mutation{Owner: o, Key: "k", Value: json.RawMessage(`"mine"`), IfVersion: first[0].Version})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("an Apply with one stale mutation: got %v, want a conflict", err)
		}
		if _, ok := get(t, s, o, "other"); ok {
			t.Error("a refused Apply wrote its other key")
		}
		if v, _ := get(t, s, o, "k"); v != `"theirs"` {
			t.Errorf("k = %s after the refusals, want \"theirs\"", v)
		}
		// Based on the current version: it goes through.
		if _, err := setIf("k", `"mine, knowingly"`, theirs.Version); err != nil {
			t.Fatal(err)
		}
		now, _ := s.Get(ctx, o, "k")
		if _, err := s.Delete(ctx, o, "k", mine, theirs.Version); !errors.Is(err, store.ErrConflict) {
			t.Errorf("a delete based on an old version: got %v, want a conflict", err)
		}
		if _, err := s.Delete(ctx, o, "k", mine, now.Version); err != nil {
			t.Errorf("a delete based on the current version: %v", err)
		}
		if _, err := s.Delete(ctx, o, "k", mine, now.Version); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleting it again: got %v, want ErrNotFound", err)
		}
	})
}

// Each instance shares which pages it has open; every instance sees them
// all; one that stops sharing stops counting after the TTL. (SQLite is one
// instance: it sees its own.)
func TestPresenceIsSharedByEveryInstance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		opts := store.Options{Redis: store.RedisOptions{PresenceTTL: 300 * time.Millisecond}}
		a := be.open(opts)
		mineA := store.Presence{"alice": {1, 2}}
		all, err := a.SharePresence(ctx, mineA)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(all, mineA) {
			t.Errorf("alone: %v, want %v", all, mineA)
		}
		if _, ok := a.(*store.SQLite); ok {
			return // one instance
		}
		b := be.open(opts)
		told := make(chan struct{}, 10)
		a.Subscribe(func(cs []store.Change) {
			for _, c := range cs {
				if c.Op == store.OpPresence {
					told <- struct{}{}
				}
			}
		})
		all, err = b.SharePresence(ctx, store.Presence{"alice": {2, 3}, "bob": {1}})
		if err != nil {
			t.Fatal(err)
		}
		want := store.Presence{"alice": {1, 2, 3}, "bob": {1}}
		if !reflect.DeepEqual(all, want) {
			t.Errorf("B sees %v, want %v", all, want)
		}
		select {
		case <-told:
		case <-time.After(5 * time.Second):
			t.Fatal("A was not told that B's pages changed")
		}
		if all, _ = a.SharePresence(ctx, mineA); !reflect.DeepEqual(all, want) {
			t.Errorf("A sees %v, want %v", all, want)
		}
		// B stops sharing (it died): after the TTL, A counts only its own.
		deadline := time.Now().Add(5 * time.Second)
		for {
			all, err = a.SharePresence(ctx, mineA)
			if err != nil {
				t.Fatal(err)
			}
			if reflect.DeepEqual(all, mineA) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("B's pages still count after its share expired: %v", all)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// A database from before provenance opens and migrates without loss: its
// tabs are numbered in the order they were made, its values keep their
// versions and times, and their origin is unknown.
func TestAnOldDatabaseGetsTabNumbersAndKeepsItsValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "storage.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	for _, q := range []string{
		`INSERT INTO users (id, created_at, seen_at, returned) VALUES ('u', ?1, ?1, 1)`,
		`INSERT INTO tabs (user_id, tab_id, created_at, seen_at) VALUES ('u', 'later', ?1 + 20, ?1), ('u', 'first', ?1 + 10, ?1)`,
		`INSERT INTO entries (scope, user_id, tab_id, key, value, version, updated_at) VALUES ('tab', 'u', 'later', 'k', '"kept"', 7, ?1)`,
	} {
		if _, err := db.Exec(q, now); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		tab  string
		want int
	}{{"first", 1}, {"later", 2}, {"new", 3}} {
		if got := mustTab(t, s, "u", c.tab); got != c.want {
			t.Errorf("tab %s is Tab %d, want %d", c.tab, got, c.want)
		}
	}
	e, err := s.Get(context.Background(), store.TabOwner("u", "later"), "k")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(string(e.Value), e.Version, e.UpdatedAt.UnixMilli(), e.Origin), fmt.Sprint(`"kept"`, 7, now, store.Origin{}); got != want {
		t.Errorf("the old value is %s, want %s", got, want)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Error(err)
	}
}

// A duplicated tab's live connection may number it before its first
// request asks for the copy: the copy still arrives, and keeps the number.
func TestCopyOntoATabNumberedFirst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
		ctx := context.Background()
		MustSet(t, s, store.TabOwner("u", "orig"), "k", `"copied"`)
		n := mustTab(t, s, "u", "dup")
		if err := s.CopyTab(ctx, "u", "orig", "dup"); err != nil {
			t.Fatalf("copy onto a numbered, empty tab: %v", err)
		}
		if v, _ := get(t, s, store.TabOwner("u", "dup"), "k"); v != `"copied"` {
			t.Errorf("the copy holds %q, want \"copied\"", v)
		}
		if got := mustTab(t, s, "u", "dup"); got != n {
			t.Errorf("the copy is Tab %d, was Tab %d", got, n)
		}
	})
}
