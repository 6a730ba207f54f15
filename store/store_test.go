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
	"sync/atomic"
	"testing"
	"time"

	"github.com/storagescopes/app/store"
)

// MustOpen opens a store on a fresh file in a temp folder and closes it when
// the test ends.
func MustOpen(tb testing.TB, opts store.Options) (*store.SQLite, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "storage.db")
	s, err := store.Open(context.Background(), path, opts)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, path
}

// MustSet stores value under key of o.
func MustSet(tb testing.TB, s store.Store, o store.Owner, key, value string) store.Entry {
	tb.Helper()
	e, err := set(context.Background(), s, o, key, value, "")
	if err != nil {
		tb.Fatalf("set %s %s: %v", o, key, err)
	}
	return e
}

// set is an Apply of one set, from the page load origin.
func set(ctx context.Context, s store.Store, o store.Owner, key, value, origin string) (store.Entry, error) {
	entries, err := s.Apply(ctx, store.Origin{ClientID: origin}, store.Mutation{Owner: o, Key: key, Value: json.RawMessage(value)})
	if err != nil {
		return store.Entry{}, err
	}
	return entries[0], nil
}

// increment is an Apply of one increment.
func increment(ctx context.Context, s store.Store, o store.Owner, key string) (store.Entry, error) {
	entries, err := s.Apply(ctx, store.Origin{}, store.Mutation{Owner: o, Key: key, Increment: true})
	if err != nil {
		return store.Entry{}, err
	}
	return entries[0], nil
}

func get(tb testing.TB, s store.Store, o store.Owner, key string) (string, bool) {
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
func entriesOf(s store.Snapshot) []string {
	var out []string
	for _, e := range s.Entries {
		out = append(out, entryString(e.Key, string(e.Value), e.Version, e.Origin))
	}
	return out
}

func entryString(key, value string, version int64, o store.Origin) string {
	return fmt.Sprintf("%s=%s@%d by %s/%d/%v", key, value, version, o.UserID, o.Tab, o.API)
}

// A write that breaks (here: a value SQLite's CHECK refuses) fails its whole
// batch, and the writes that shared it fail with it. A counter then holds
// exactly the increments that were acknowledged: the writer must not keep
// counting from a value it wrote in a transaction that rolled back.
func TestCountersHoldOnlyAcknowledgedIncrementsWhenBatchesFail(t *testing.T) {
	s, _ := MustOpen(t, store.Options{})
	ctx := context.Background()
	var ok, failed, broken atomic.Int64
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Go(func() {
			for range 40 {
				if g%4 == 0 { // a quarter of the writers break their batch
					if _, err := set(ctx, s, store.UserOwner("breaker"), "k", "not json", ""); err == nil {
						t.Error("a value that is not JSON was stored")
					}
					broken.Add(1)
					continue
				}
				if _, err := increment(ctx, s, store.GeneralOwner, "visits"); err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() == 0 {
		t.Fatalf("no increment shared a batch with a broken write (%d broken): the test proves nothing", broken.Load())
	}
	v, found := get(t, s, store.GeneralOwner, "visits")
	if !found {
		v = "0" // every increment failed with its batch (a busy machine)
	}
	if want := fmt.Sprint(ok.Load()); v != want {
		t.Errorf("visits = %s after %d acknowledged increments (%d failed with their batch), want %s", v, ok.Load(), failed.Load(), want)
	}
	// And the next one counts on from there.
	e, err := increment(ctx, s, store.GeneralOwner, "visits")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint(ok.Load() + 1); string(e.Value) != want {
		t.Errorf("the next increment answered %s, want %s", e.Value, want)
	}
}

// Writes racing Close each come back, none waits for ever: either written
// (and there after a reopen) or refused with ErrClosed, nothing written.
func TestWritesRacingCloseAreWrittenOrRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "storage.db")
	for round := range 10 {
		s, err := store.Open(context.Background(), path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 64)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = set(context.Background(), s, store.GeneralOwner, fmt.Sprintf("r%d-%d", round, i), "1", "")
			})
		}
		s.Close()
		returned := make(chan struct{})
		go func() { wg.Wait(); close(returned) }()
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: a write racing Close never came back", round)
		}
		s, err = store.Open(context.Background(), path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i, err := range errs {
			_, found := get(t, s, store.GeneralOwner, fmt.Sprintf("r%d-%d", round, i))
			switch {
			case err == nil && !found:
				t.Errorf("round %d: write %d acknowledged, then not there after a reopen", round, i)
			case err != nil && found:
				t.Errorf("round %d: write %d refused (%v), yet written", round, i, err)
			case err != nil && !errors.Is(err, store.ErrClosed):
				t.Errorf("round %d: write %d: %v, want store.ErrClosed", round, i, err)
			}
		}
		s.Close()
	}
}
