package store_test

// The dictionary part of the conformance suite: one owner's keys, set, got,
// counted, deleted and cleared, with versions and limits. It runs against
// every owner of SQLite and of Redis, and against store.MemDict, which
// keeps the browser and client scopes: all three keep the same rules.

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/storagescopes/app/scopes"

	"github.com/storagescopes/app/store"
)

// dictionaries are the implementations of store.Dict besides the stored
// owners', by name, each made fresh under limits.
var dictionaries = map[string]func(t *testing.T, limits store.Limits) store.Dict{
	"client": func(t *testing.T, limits store.Limits) store.Dict {
		c := store.NewClients(limits, time.Hour)
		t.Cleanup(c.Close)
		return c.Dict(store.Origin{UserID: "u", ClientID: "c"})
	},
	// The browser scope, in the cookie of one request's answer.
	"cookie": func(t *testing.T, limits store.Limits) store.Dict {
		st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "cookie.db"), store.Options{Limits: limits})
		if err != nil {
			t.Fatal(err)
		}
		app, err := scopes.New(scopes.Config{Store: st, Secrets: []string{"conformance-secret-conformance-0123456789"}, Limits: limits})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { app.Close(); st.Close() })
		var d store.Dict
		app.Identify(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { d = scopes.Browser(r) })).
			ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		return d
	},
}

// forEachDictionary runs test on a fresh dictionary under limits: each
// stored owner of SQLite and of Redis, and every other implementation.
func forEachDictionary(t *testing.T, limits store.Limits, test func(t *testing.T, d store.Dict)) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{Limits: limits})
		for _, o := range owners {
			t.Run(string(o.Scope), func(t *testing.T) { test(t, store.NewDict(s, o, store.Origin{})) })
		}
	})
	for name, make := range dictionaries {
		t.Run(name, func(t *testing.T) { test(t, make(t, limits)) })
	}
}

// value is key's value in d, and whether it is there.
func value(t *testing.T, d store.Dict, key string) (string, bool) {
	t.Helper()
	e, err := d.Get(context.Background(), key)
	if errors.Is(err, store.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return string(e.Value), true
}

// mustPut sets key to v in d.
func mustPut(t *testing.T, d store.Dict, key, v string) store.Entry {
	t.Helper()
	e, err := d.Set(context.Background(), key, json.RawMessage(v))
	if err != nil {
		t.Fatalf("set %s: %v", key, err)
	}
	return e
}

func TestDictionaryOperations(t *testing.T) {
	forEachDictionary(t, store.Limits{}, func(t *testing.T, d store.Dict) {
		ctx := context.Background()
		if _, ok := value(t, d, "a"); ok {
			t.Fatalf("new owner has key a")
		}
		first := mustPut(t, d, "a", `"one"`)
		second := mustPut(t, d, "a", `{"n":2}`)
		if second.Version <= first.Version {
			t.Errorf("version after upsert = %d, want more than %d", second.Version, first.Version)
		}
		if v, _ := value(t, d, "a"); v != `{"n":2}` {
			t.Errorf("get a = %s, want {\"n\":2}", v)
		}
		mustPut(t, d, "b", `true`)
		snap, err := d.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if list := snap.Entries; len(list) != 2 || list[0].Key != "a" || list[1].Key != "b" {
			t.Errorf("list = %v, want keys a, b", list)
		}
		if snap.Version < second.Version {
			t.Errorf("snapshot version = %d, want at least %d", snap.Version, second.Version)
		}
		deleted, err := d.Delete(ctx, "a")
		if err != nil {
			t.Fatalf("delete a: %v", err)
		}
		if deleted <= second.Version {
			t.Errorf("delete's version = %d, want more than %d", deleted, second.Version)
		}
		if _, ok := value(t, d, "a"); ok {
			t.Errorf("a still there after delete")
		}
		if _, err := d.Delete(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete missing key: got %v, want ErrNotFound", err)
		}
		n, cleared, err := d.Clear(ctx)
		if err != nil || n != 1 || cleared <= deleted {
			t.Errorf("clear = %d, v%d, %v; want 1, more than v%d, nil", n, cleared, err, deleted)
		}
		if snap, _ := d.List(ctx); len(snap.Entries) != 0 {
			t.Errorf("list after clear = %v, want empty", snap.Entries)
		}
	})
}

// A change based on a version (If-Match) is made only while the key is at
// that version; a refusal says what the key holds now and changes nothing.
func TestDictionaryChangesBasedOnAVersion(t *testing.T) {
	forEachDictionary(t, store.Limits{}, func(t *testing.T, d store.Dict) {
		ctx := context.Background()
		first, err := d.SetIf(ctx, "k", json.RawMessage(`"first"`), store.Absent)
		if err != nil {
			t.Fatalf("a new key based on none: %v", err)
		}
		theirs := mustPut(t, d, "k", `"theirs"`)
		for _, tc := range []struct {
			name string
			at   int64
		}{{"an old version", first.Version}, {"none, but it exists", store.Absent}, {"a version never held", theirs.Version + 100}} {
			_, err := d.SetIf(ctx, "k", json.RawMessage(`"mine"`), tc.at)
			var conflict *store.ConflictError
			if !errors.As(err, &conflict) || conflict.Current.Version != theirs.Version || string(conflict.Current.Value) != `"theirs"` {
				t.Errorf("set based on %s: got %v, want a conflict with the current value", tc.name, err)
			}
			if _, err := d.DeleteIf(ctx, "k", tc.at); !errors.Is(err, store.ErrConflict) {
				t.Errorf("delete based on %s: got %v, want a conflict", tc.name, err)
			}
		}
		if v, _ := value(t, d, "k"); v != `"theirs"` {
			t.Errorf("k = %s after refused changes, want \"theirs\"", v)
		}
		if _, err := d.SetIf(ctx, "k", json.RawMessage(`"mine"`), theirs.Version); err != nil {
			t.Errorf("set based on the current version: %v", err)
		}
	})
}

// What the limits refuse, every dictionary refuses, and stores nothing.
func TestDictionaryRefusesWhatTheLimitsRefuse(t *testing.T) {
	forEachDictionary(t, store.Limits{KeysPerOwner: 3, ValueBytes: 64}, func(t *testing.T, d store.Dict) {
		ctx := context.Background()
		for _, k := range []string{"a", "b", "c"} {
			mustPut(t, d, k, `1`)
		}
		if _, err := d.Set(ctx, "d", json.RawMessage(`1`)); !errors.Is(err, store.ErrTooManyKeys) {
			t.Errorf("fourth key: got %v, want ErrTooManyKeys", err)
		}
		if _, err := d.Increment(ctx, "d"); !errors.Is(err, store.ErrTooManyKeys) {
			t.Errorf("fourth key counted: got %v, want ErrTooManyKeys", err)
		}
		var invalid *store.InvalidError
		if _, err := d.Set(ctx, "a", json.RawMessage(strconv.Quote(string(make([]byte, 100))))); !errors.As(err, &invalid) {
			t.Errorf("a value over ValueBytes: got %v, want an InvalidError", err)
		}
		if _, err := d.Set(ctx, "", json.RawMessage(`1`)); !errors.As(err, &invalid) {
			t.Errorf("an empty key: got %v, want an InvalidError", err)
		}
		if _, ok := value(t, d, "d"); ok {
			t.Errorf("refused key d was stored")
		}
		if v, _ := value(t, d, "a"); v != "1" {
			t.Errorf("a = %s after refused changes, want 1", v)
		}
		// Overwriting an existing key is still allowed at the cap.
		mustPut(t, d, "a", `2`)
	})
}

// Every dictionary counts by store.NextCount; the Redis scripts count on
// the digits (Lua's numbers are doubles, exact only up to 2^53), and all
// must agree with it everywhere, at the edges of a double and of an int64
// too.
func TestDictionaryCountsAsNextCount(t *testing.T) {
	forEachDictionary(t, store.Limits{}, func(t *testing.T, d store.Dict) {
		for _, from := range []string{
			"0", "-1", "-2", "9", "99", "-10", "41",
			strconv.FormatInt(1<<53-1, 10), strconv.FormatInt(1<<53, 10), strconv.FormatInt(1<<53+1, 10),
			strconv.FormatInt(math.MaxInt64-1, 10), strconv.FormatInt(math.MaxInt64, 10),
			strconv.FormatInt(math.MinInt64, 10), "9223372036854775808", "-9223372036854775809",
			"1.5", "1e3", `"7"`, `"many"`, "true", "null", "[1]",
		} {
			mustPut(t, d, "n", from)
			e, err := d.Increment(context.Background(), "n")
			if err != nil {
				t.Fatalf("increment from %s: %v", from, err)
			}
			want := string(store.NextCount(json.RawMessage(from)))
			if string(e.Value) != want {
				t.Errorf("increment from %s answered %s, want %s", from, e.Value, want)
			}
			if v, _ := value(t, d, "n"); v != want {
				t.Errorf("increment from %s stored %s, want %s", from, v, want)
			}
		}
		if _, err := d.Delete(context.Background(), "n"); err != nil {
			t.Fatal(err)
		}
		if e, err := d.Increment(context.Background(), "n"); err != nil || string(e.Value) != "1" {
			t.Errorf("a new key counted: %s, %v; want 1", e.Value, err)
		}
	})
}

// The seed's reads, on every dictionary: get with a default, typed; in;
// keys. A stored null reads as the default; a value of another type is
// ErrWrongType, with the default.
func TestDictionaryReadsAsTheSeedDoes(t *testing.T) {
	forEachDictionary(t, store.Limits{}, func(t *testing.T, d store.Dict) {
		ctx := context.Background()
		if name, err := store.Get(ctx, d, "username", "Guest"); err != nil || name != "Guest" {
			t.Errorf("get username before a set: %q, %v; want Guest", name, err)
		}
		if has, err := store.Has(ctx, d, "dark_mode"); err != nil || has {
			t.Errorf("dark_mode in an empty scope: %v, %v; want false", has, err)
		}
		for key, v := range map[string]any{"username": "Ann <&>", "dark_mode": true, "font_size": 18, "nothing": nil,
			"tags": []string{"a", "b"}} {
			if _, err := d.Set(ctx, key, v); err != nil {
				t.Fatalf("set %s: %v", key, err)
			}
		}
		if name, _ := store.Get(ctx, d, "username", "Guest"); name != "Ann <&>" {
			t.Errorf("username: %q, want %q", name, "Ann <&>")
		}
		if dark, _ := store.Get(ctx, d, "dark_mode", false); !dark {
			t.Error("dark_mode: false, want true")
		}
		if size, _ := store.Get(ctx, d, "font_size", 16); size != 18 {
			t.Errorf("font_size: %d, want 18", size)
		}
		if v, err := store.Get(ctx, d, "nothing", "default"); err != nil || v != "default" {
			t.Errorf("a stored null: %q, %v; want the default", v, err)
		}
		if tags, _ := store.Get[[]string](ctx, d, "tags", nil); len(tags) != 2 || tags[1] != "b" {
			t.Errorf("tags: %q, want [a b]", tags)
		}
		if n, err := store.Get(ctx, d, "username", 0); !errors.Is(err, store.ErrWrongType) || n != 0 {
			t.Errorf("username as a number: %d, %v; want 0 and ErrWrongType", n, err)
		}
		if has, _ := store.Has(ctx, d, "dark_mode"); !has {
			t.Error("dark_mode in the scope: false, want true")
		}
		keys, err := store.Keys(ctx, d)
		if want := []string{"dark_mode", "font_size", "nothing", "tags", "username"}; err != nil || !slices.Equal(keys, want) {
			t.Errorf("keys: %q, %v; want %q", keys, err, want)
		}
		e, _ := d.Get(ctx, "username")
		if string(e.Value) != `"Ann <&>"` {
			t.Errorf("stored as %s, want the text as typed", e.Value)
		}
		if _, err := d.Set(ctx, "bad", json.RawMessage(`{"a":1,"a":2}`)); err == nil {
			t.Error("a raw value with a duplicate key was stored")
		}
		if _, err := d.Set(ctx, "bad", func() {}); err == nil {
			t.Error("a func was stored")
		}
	})
}

// A set says whether it made the key (the API's 201) or replaced it (200),
// on every dictionary, without a read of its own.
func TestDictionarySaysWhetherASetMadeTheKey(t *testing.T) {
	forEachDictionary(t, store.Limits{}, func(t *testing.T, d store.Dict) {
		ctx := context.Background()
		for i, want := range []bool{true, false} {
			e, err := d.Set(ctx, "k", i)
			if err != nil {
				t.Fatal(err)
			}
			if e.Created != want {
				t.Errorf("set %d: Created %v, want %v", i, e.Created, want)
			}
		}
		if _, err := d.Delete(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if e, err := d.Increment(ctx, "k"); err != nil || !e.Created {
			t.Errorf("an increment of a deleted key: Created %v, %v; want true", e.Created, err)
		}
	})
}
