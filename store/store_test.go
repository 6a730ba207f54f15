package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storagescopes/app/store"
)

// MustOpen opens a store on a fresh file in a temp folder and closes it when
// the test ends.
func MustOpen(tb testing.TB, opts store.Options) (*store.Store, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "storage.db")
	s, err := store.Open(context.Background(), path, opts)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, path
}

func MustSet(tb testing.TB, s *store.Store, o store.Owner, key, value string) store.Entry {
	tb.Helper()
	e, err := s.Set(context.Background(), o, key, json.RawMessage(value), "")
	if err != nil {
		tb.Fatalf("set %s %s: %v", o, key, err)
	}
	return e
}

func get(tb testing.TB, s *store.Store, o store.Owner, key string) (string, bool) {
	tb.Helper()
	e, err := s.Get(context.Background(), o, key)
	if errors.Is(err, store.ErrNotFound) {
		return "", false
	}
	if err != nil {
		tb.Fatalf("get %s %s: %v", o, key, err)
	}
	return string(e.Value), true
}

var owners = []store.Owner{
	store.GeneralOwner,
	store.UserOwner("u1"),
	store.TabOwner("u1", "t1"),
}

func TestDictionaryOperationsPerScope(t *testing.T) {
	for _, o := range owners {
		t.Run(string(o.Scope), func(t *testing.T) {
			s, _ := MustOpen(t, store.Options{})
			ctx := context.Background()
			if _, ok := get(t, s, o, "a"); ok {
				t.Fatalf("new owner has key a")
			}
			first := MustSet(t, s, o, "a", `"one"`)
			second := MustSet(t, s, o, "a", `{"n":2}`)
			if second.Version <= first.Version {
				t.Errorf("version after upsert = %d, want more than %d", second.Version, first.Version)
			}
			if v, _ := get(t, s, o, "a"); v != `{"n":2}` {
				t.Errorf("get a = %s, want {\"n\":2}", v)
			}
			MustSet(t, s, o, "b", `true`)
			snap, err := s.List(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if list := snap.Entries; len(list) != 2 || list[0].Key != "a" || list[1].Key != "b" {
				t.Errorf("list = %v, want keys a, b", list)
			}
			if snap.Version < second.Version {
				t.Errorf("snapshot version = %d, want at least %d", snap.Version, second.Version)
			}
			if err := s.Delete(ctx, o, "a", ""); err != nil {
				t.Fatalf("delete a: %v", err)
			}
			if _, ok := get(t, s, o, "a"); ok {
				t.Errorf("a still there after delete")
			}
			if err := s.Delete(ctx, o, "a", ""); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("delete missing key: got %v, want ErrNotFound", err)
			}
			n, err := s.Clear(ctx, o, "")
			if err != nil || n != 1 {
				t.Errorf("clear = %d, %v; want 1, nil", n, err)
			}
			if snap, _ := s.List(ctx, o); len(snap.Entries) != 0 {
				t.Errorf("list after clear = %v, want empty", snap.Entries)
			}
		})
	}
}

func TestIncrementIsExactUnderConcurrency(t *testing.T) {
	s, _ := MustOpen(t, store.Options{})
	o := store.UserOwner("u1")
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := s.Increment(context.Background(), o, "visits", ""); err != nil {
				t.Errorf("increment: %v", err)
			}
		})
	}
	wg.Wait()
	if v, _ := get(t, s, o, "visits"); v != "50" {
		t.Errorf("visits = %s, want 50", v)
	}
}

func TestIncrementRestartsANonIntegerValue(t *testing.T) {
	s, _ := MustOpen(t, store.Options{})
	MustSet(t, s, store.GeneralOwner, "visits", `"many"`)
	e, err := s.Increment(context.Background(), store.GeneralOwner, "visits", "")
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value) != "1" {
		t.Errorf("visits = %s, want 1", e.Value)
	}
}

func TestScopesAndOwnersAreSeparate(t *testing.T) {
	s, _ := MustOpen(t, store.Options{})
	MustSet(t, s, store.TabOwner("alice", "t1"), "k", `"alice's"`)
	MustSet(t, s, store.UserOwner("alice"), "k", `"user"`)
	MustSet(t, s, store.GeneralOwner, "k", `"general"`)

	// The same tab id under another user reaches nothing of alice's.
	if v, ok := get(t, s, store.TabOwner("mallory", "t1"), "k"); ok {
		t.Errorf("mallory read alice's tab row: %s", v)
	}
	if v, ok := get(t, s, store.UserOwner("mallory"), "k"); ok {
		t.Errorf("mallory read alice's user row: %s", v)
	}
	for o, want := range map[store.Owner]string{
		store.TabOwner("alice", "t1"): `"alice's"`,
		store.UserOwner("alice"):      `"user"`,
		store.GeneralOwner:            `"general"`,
	} {
		if v, _ := get(t, s, o, "k"); v != want {
			t.Errorf("%s k = %s, want %s", o, v, want)
		}
	}
}

func TestCopyTabMakesAnIndependentCopy(t *testing.T) {
	s, _ := MustOpen(t, store.Options{})
	ctx := context.Background()
	orig, dup := store.TabOwner("u", "orig"), store.TabOwner("u", "dup")
	MustSet(t, s, orig, "tab_data", `"hello"`)
	if err := s.CopyTab(ctx, "u", "orig", "dup", ""); err != nil {
		t.Fatal(err)
	}
	if v, _ := get(t, s, dup, "tab_data"); v != `"hello"` {
		t.Errorf("copy's tab_data = %s, want \"hello\"", v)
	}
	MustSet(t, s, dup, "tab_data", `"changed in copy"`)
	if v, _ := get(t, s, orig, "tab_data"); v != `"hello"` {
		t.Errorf("original's tab_data = %s after the copy changed, want \"hello\"", v)
	}
	if err := s.CopyTab(ctx, "u", "orig", "dup", ""); !errors.Is(err, store.ErrTabExists) {
		t.Errorf("second copy onto the same tab: got %v, want ErrTabExists", err)
	}
	if v, _ := get(t, s, dup, "tab_data"); v != `"changed in copy"` {
		t.Errorf("copy's tab_data = %s after a refused copy, want it unchanged", v)
	}
}

func TestValuesSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "storage.db")
	ctx := context.Background()
	s, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	boot1 := s.Boot().Number
	var last store.Entry
	for _, o := range owners {
		last = MustSet(t, s, o, "k", `[1,2,3]`)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, o := range owners {
		if v, _ := get(t, s, o, "k"); v != `[1,2,3]` {
			t.Errorf("%s k after reopen = %s, want [1,2,3]", o, v)
		}
	}
	if got := s.Boot().Number; got != boot1+1 {
		t.Errorf("boot number = %d, want %d", got, boot1+1)
	}
	// Versions keep growing across restarts.
	if e := MustSet(t, s, store.GeneralOwner, "k", `0`); e.Version <= last.Version {
		t.Errorf("version after reopen = %d, want more than %d", e.Version, last.Version)
	}
}

func TestTooManyKeysIsRefusedAndChangesNothing(t *testing.T) {
	s, _ := MustOpen(t, store.Options{Limits: store.Limits{KeysPerOwner: 3}})
	o := store.UserOwner("u")
	for _, k := range []string{"a", "b", "c"} {
		MustSet(t, s, o, k, `1`)
	}
	if _, err := s.Set(context.Background(), o, "d", json.RawMessage(`1`), ""); !errors.Is(err, store.ErrTooManyKeys) {
		t.Fatalf("fourth key: got %v, want ErrTooManyKeys", err)
	}
	if _, ok := get(t, s, o, "d"); ok {
		t.Errorf("refused key d was stored")
	}
	// Overwriting an existing key is still allowed at the cap.
	MustSet(t, s, o, "a", `2`)
}

func TestOldestTabIsEvictedOverTheCap(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, _ := MustOpen(t, store.Options{Now: c.Now, Limits: store.Limits{TabsPerUser: 2}})
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
}

func TestOnCommitReportsChangesInOrder(t *testing.T) {
	var mu sync.Mutex
	var got []store.Change
	s, _ := MustOpen(t, store.Options{})
	s.Subscribe(func(cs []store.Change) {
		mu.Lock()
		got = append(got, cs...)
		mu.Unlock()
	})
	ctx := context.Background()
	o := store.UserOwner("u")
	s.Set(ctx, o, "a", json.RawMessage(`1`), "tab-A")
	s.Delete(ctx, o, "a", "tab-B")
	s.Delete(ctx, o, "missing", "tab-B") // fails: reports nothing
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("changes = %+v, want 2", got)
	}
	if got[0].Op != store.OpSet || got[0].Origin != "tab-A" || got[1].Op != store.OpDelete || got[1].Version <= got[0].Version {
		t.Errorf("changes = %+v, want a set from tab-A then a newer delete", got)
	}
}

func TestOpenRefusesAFileThatIsNotSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "storage.db")
	garbage := []byte(strings.Repeat("not a database ", 100))
	if err := os.WriteFile(path, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(context.Background(), path, store.Options{})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("open garbage: got %v, want an error naming %s", err, path)
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(garbage) {
		t.Errorf("the garbage file was changed")
	}
}

func TestSecretIsGeneratedOnce(t *testing.T) {
	s, _ := MustOpen(t, store.Options{})
	ctx := context.Background()
	first, generated, err := s.Secret(ctx)
	if err != nil || !generated || len(first) < 32 {
		t.Fatalf("first Secret = %q, %v, %v; want a new secret", first, generated, err)
	}
	second, generated, err := s.Secret(ctx)
	if err != nil || generated || second != first {
		t.Errorf("second Secret = %q, %v, %v; want the same secret, not generated", second, generated, err)
	}
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	s, path := MustOpen(t, store.Options{})
	MustSet(t, s, store.GeneralOwner, "k", `"kept"`)
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (999, 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	_, err = store.Open(context.Background(), path, store.Options{})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open with schema 999: got %v, want a refusal naming a newer schema", err)
	}
	// The data is untouched: remove the marker and it opens again.
	db, _ = sql.Open("sqlite", path)
	db.Exec(`DELETE FROM goose_db_version WHERE version_id = 999`)
	db.Close()
	s, err = store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := get(t, s, store.GeneralOwner, "k"); v != `"kept"` {
		t.Errorf("value after the refused open = %s", v)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestOpenRefusesAFolderItCannotCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, []byte("x"), 0o644)
	_, err := store.Open(context.Background(), filepath.Join(file, "storage.db"), store.Options{})
	if err == nil || !strings.Contains(err.Error(), "database folder") {
		t.Errorf("got %v, want an error about the database folder", err)
	}
}

// The in-memory snapshots stay equal to the database under concurrent
// writes, deletes, clears and reads.
func TestCachedSnapshotsMatchTheDatabase(t *testing.T) {
	s, path := MustOpen(t, store.Options{})
	ctx := context.Background()
	owners := []store.Owner{store.GeneralOwner, store.UserOwner("u"), store.TabOwner("u", "t")}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				o := owners[(g+i)%len(owners)]
				key := fmt.Sprintf("k%d", i%7)
				switch i % 11 {
				case 3:
					s.Delete(ctx, o, key, "")
				case 7:
					s.Clear(ctx, o, "")
				default:
					s.Set(ctx, o, key, json.RawMessage(fmt.Sprintf(`"%d-%d"`, g, i)), "")
				}
				if _, err := s.List(ctx, o); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	fresh, err := store.Open(ctx, path, store.Options{}) // no cache yet: reads the file
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	for _, o := range owners {
		got, _ := s.List(ctx, o)
		want, _ := fresh.List(ctx, o)
		if fmt.Sprint(entriesOf(got)) != fmt.Sprint(entriesOf(want)) {
			t.Errorf("%s cached %v, database %v", o, entriesOf(got), entriesOf(want))
		}
	}
}

func entriesOf(s store.Snapshot) []string {
	var out []string
	for _, e := range s.Entries {
		out = append(out, fmt.Sprintf("%s=%s@%d", e.Key, e.Value, e.Version))
	}
	return out
}

func TestCopyIntoACachedEmptyTab(t *testing.T) {
	s, _ := MustOpen(t, store.Options{})
	ctx := context.Background()
	MustSet(t, s, store.TabOwner("u", "orig"), "k", `"v"`)
	if snap, _ := s.List(ctx, store.TabOwner("u", "dup")); len(snap.Entries) != 0 {
		t.Fatal("new tab not empty")
	}
	if err := s.CopyTab(ctx, "u", "orig", "dup", ""); err != nil {
		t.Fatal(err)
	}
	if snap, _ := s.List(ctx, store.TabOwner("u", "dup")); len(snap.Entries) != 1 {
		t.Errorf("after the copy the tab lists %v, want the copied key", snap.Entries)
	}
}
