package store_test

// The conformance suite: every test here runs against SQLite and against a
// real redis-server, so that both backends keep the same semantics.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storagescopes/app/store"
)

// backend is what both stores offer (handlers.Store, plus what the tests
// and cmd/web use).
type backend interface {
	List(ctx context.Context, o store.Owner) (store.Snapshot, error)
	Get(ctx context.Context, o store.Owner, key string) (store.Entry, error)
	Set(ctx context.Context, o store.Owner, key string, value json.RawMessage, origin string) (store.Entry, error)
	Increment(ctx context.Context, o store.Owner, key, origin string) (store.Entry, error)
	Apply(ctx context.Context, origin string, muts ...store.Mutation) ([]store.Entry, error)
	Delete(ctx context.Context, o store.Owner, key, origin string) error
	Clear(ctx context.Context, o store.Owner, origin string) (int, error)
	CopyTab(ctx context.Context, userID, fromTab, toTab, origin string) error
	Touch(ctx context.Context, userID, tabID string, returning bool) error
	Subscribe(fn func([]store.Change))
	Boot() store.Boot
	Secret(ctx context.Context) (string, bool, error)
	Close() error
}

// opener opens an instance of the backend under test; every call opens
// another instance on the same data (a restart, or a second server).
type opener func(opts store.Options) backend

// forEachBackend runs test against SQLite and against Redis.
func forEachBackend(t *testing.T, test func(t *testing.T, open opener)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "storage.db")
		test(t, func(opts store.Options) backend {
			t.Helper()
			s, err := store.Open(context.Background(), path, opts)
			if err != nil {
				t.Fatalf("open store: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("redis", func(t *testing.T) {
		url := MustRedis(t)
		test(t, func(opts store.Options) backend {
			t.Helper()
			s, err := store.OpenRedis(context.Background(), url, opts)
			if err != nil {
				t.Fatalf("open redis store: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

func TestDictionaryOperationsPerScope(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		for _, o := range owners {
			t.Run(string(o.Scope), func(t *testing.T) {
				s := open(store.Options{})
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
	})
}

func TestIncrementIsExactUnderConcurrency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{})
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
	})
}

func TestIncrementRestartsANonIntegerValue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{})
		MustSet(t, s, store.GeneralOwner, "visits", `"many"`)
		e, err := s.Increment(context.Background(), store.GeneralOwner, "visits", "")
		if err != nil {
			t.Fatal(err)
		}
		if string(e.Value) != "1" {
			t.Errorf("visits = %s, want 1", e.Value)
		}
	})
}

// A counter counts from what is stored now, whatever changed it last: a
// set, a delete, a clear, a tab copy, a tab evicted over the cap. (The
// SQLite writer remembers the values it wrote; each of these must reach
// what it remembers.)
func TestIncrementCountsFromWhatIsStored(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s := open(store.Options{Now: c.Now, Limits: store.Limits{TabsPerUser: 2}})
		ctx := context.Background()
		count := func(o store.Owner) string {
			t.Helper()
			c.Advance(time.Second) // tabs are evicted by last use
			e, err := s.Increment(ctx, o, "visits", "")
			if err != nil {
				t.Fatalf("increment %s: %v", o, err)
			}
			if v, _ := get(t, s, o, "visits"); v != string(e.Value) {
				t.Errorf("%s: increment answered %s, stored %s", o, e.Value, v)
			}
			return string(e.Value)
		}
		user := store.UserOwner("u")
		steps := []struct {
			name   string
			change func()
			o      store.Owner
			want   string // "" for whatever is stored (count checks that)
		}{
			{"first", func() {}, user, "1"},
			{"again", func() {}, user, "2"},
			{"after a set", func() { MustSet(t, s, user, "visits", `41`) }, user, "42"},
			{"after a delete", func() {
				if err := s.Delete(ctx, user, "visits", ""); err != nil {
					t.Fatal(err)
				}
			}, user, "1"},
			{"after a clear", func() {
				count(user)
				if _, err := s.Clear(ctx, user, ""); err != nil {
					t.Fatal(err)
				}
			}, user, "1"},
			{"in a copied tab", func() {
				count(store.TabOwner("u", "t1"))
				count(store.TabOwner("u", "t1"))
				if err := s.CopyTab(ctx, "u", "t1", "t2", ""); err != nil {
					t.Fatal(err)
				}
			}, store.TabOwner("u", "t2"), "3"},
			{"in a tab evicted over the cap and opened again", func() {
				count(store.TabOwner("u", "t3")) // evicts t1, the least recently used
			}, store.TabOwner("u", "t1"), "1"},
			{"in a tab written and then evicted by the same write", func() {
				c.Advance(time.Second)
				// The new t4 evicts the least recently used tab: for SQLite,
				// which notes a tab's use hourly, t3, after its count went up
				// in this same write; Redis notes every use and evicts t1.
				// Either way the count must be what is stored.
				if _, err := s.Apply(ctx, "",
					store.Mutation{Owner: store.TabOwner("u", "t3"), Key: "visits", Increment: true},
					store.Mutation{Owner: store.TabOwner("u", "t4"), Key: "k", Value: json.RawMessage(`1`)}); err != nil {
					t.Fatal(err)
				}
			}, store.TabOwner("u", "t3"), ""},
		}
		for _, step := range steps {
			step.change()
			if got := count(step.o); step.want != "" && got != step.want {
				t.Errorf("%s: %s visits = %s, want %s", step.name, step.o, got, step.want)
			}
		}
	})
}

func TestScopesAndOwnersAreSeparate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{})
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
	})
}

func TestCopyTabMakesAnIndependentCopy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{})
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
	})
}

func TestValuesSurviveReopen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{})
		boot1 := s.Boot().Number
		var last store.Entry
		for _, o := range owners {
			last = MustSet(t, s, o, "k", `[1,2,3]`)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(store.Options{})
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
	})
}

func TestTooManyKeysIsRefusedAndChangesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{Limits: store.Limits{KeysPerOwner: 3}})
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
	})
}

func TestOldestTabIsEvictedOverTheCap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s := open(store.Options{Now: c.Now, Limits: store.Limits{TabsPerUser: 2}})
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
	forEachBackend(t, func(t *testing.T, open opener) {
		c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s := open(store.Options{Now: c.Now, Limits: store.Limits{TabsPerUser: 2}})
		MustSet(t, s, store.TabOwner("u", "t1"), "k", `"from t1"`)
		c.Advance(time.Second)
		MustSet(t, s, store.TabOwner("u", "t2"), "k", `2`)
		c.Advance(time.Second)
		if err := s.CopyTab(context.Background(), "u", "t1", "t3", ""); err != nil {
			t.Fatal(err)
		}
		if v, _ := get(t, s, store.TabOwner("u", "t3"), "k"); v != `"from t1"` {
			t.Errorf("the copy of t1 holds %q, want \"from t1\"", v)
		}
	})
}

func TestOnCommitReportsChangesInOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		var mu sync.Mutex
		var got []store.Change
		s := open(store.Options{})
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
		s.Set(ctx, store.GeneralOwner, "marker", json.RawMessage(`1`), "")
		// Redis reports through pub/sub: wait for the marker, after which
		// everything before it has arrived.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n >= 3 || time.Now().After(deadline) {
				break
			}
		}
		mu.Lock()
		defer mu.Unlock()
		got = got[:len(got)-1] // the marker
		if len(got) != 2 {
			t.Fatalf("changes = %+v, want 2", got)
		}
		if got[0].Op != store.OpSet || got[0].Origin != "tab-A" || got[1].Op != store.OpDelete || got[1].Version <= got[0].Version {
			t.Errorf("changes = %+v, want a set from tab-A then a newer delete", got)
		}
	})
}

func TestSecretIsGeneratedOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{})
		ctx := context.Background()
		first, generated, err := s.Secret(ctx)
		if err != nil || !generated || len(first) < 32 {
			t.Fatalf("first Secret = %q, %v, %v; want a new secret", first, generated, err)
		}
		second, generated, err := s.Secret(ctx)
		if err != nil || generated || second != first {
			t.Errorf("second Secret = %q, %v, %v; want the same secret, not generated", second, generated, err)
		}
	})
}

func TestCachedSnapshotsMatchTheDatabase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{})
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
		fresh := open(store.Options{}) // another instance: no cache, reads the data
		for _, o := range owners {
			got, _ := s.List(ctx, o)
			want, _ := fresh.List(ctx, o)
			if fmt.Sprint(entriesOf(got)) != fmt.Sprint(entriesOf(want)) {
				t.Errorf("%s cached %v, database %v", o, entriesOf(got), entriesOf(want))
			}
		}
	})
}

func TestCopyIntoACachedEmptyTab(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{})
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
	})
}

// Apply is all or nothing: two new keys of one owner need room for two.
func TestApplyRefusesWhenTheNewKeysTogetherDoNotFit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{Limits: store.Limits{KeysPerOwner: 3}})
		o := store.UserOwner("u")
		MustSet(t, s, o, "a", `1`)
		MustSet(t, s, o, "b", `1`) // room for one more key, not two
		_, err := s.Apply(context.Background(), "",
			store.Mutation{Owner: o, Key: "a", Increment: true},
			store.Mutation{Owner: o, Key: "c", Value: json.RawMessage(`1`)},
			store.Mutation{Owner: o, Key: "d", Value: json.RawMessage(`1`)})
		if !errors.Is(err, store.ErrTooManyKeys) {
			t.Fatalf("got %v, want ErrTooManyKeys", err)
		}
		snap, _ := s.List(context.Background(), o)
		if got := fmt.Sprint(entriesOf(snap)); len(snap.Entries) != 2 || !strings.Contains(got, "a=1@") {
			t.Errorf("a refused Apply changed something: %s", got)
		}
	})
}

func TestApplyMixesSetsAndIncrementsInOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{})
		u, tab := store.UserOwner("u"), store.TabOwner("u", "t")
		MustSet(t, s, u, "visits", `41`)
		MustSet(t, s, tab, "word", `"many"`)
		steps := []struct {
			m    store.Mutation
			want string
		}{
			{store.Mutation{Owner: u, Key: "visits", Increment: true}, "42"},              // an integer counts on
			{store.Mutation{Owner: store.GeneralOwner, Key: "new", Increment: true}, "1"}, // a new key starts at 1
			{store.Mutation{Owner: tab, Key: "word", Increment: true}, "1"},               // so does a non-integer
			{store.Mutation{Owner: u, Key: "page", Value: json.RawMessage(`"/"`)}, `"/"`},
		}
		var muts []store.Mutation
		for _, st := range steps {
			muts = append(muts, st.m)
		}
		got, err := s.Apply(context.Background(), "", muts...)
		if err != nil {
			t.Fatal(err)
		}
		for i, st := range steps {
			e := got[i]
			if string(e.Value) != st.want {
				t.Errorf("%s answered %s, want %s", e.Key, e.Value, st.want)
			}
			if v, _ := get(t, s, st.m.Owner, st.m.Key); v != st.want {
				t.Errorf("%s stored %s, want %s", e.Key, v, st.want)
			}
			if i > 0 && e.Version <= got[i-1].Version {
				t.Errorf("versions do not grow in order: %d after %d", e.Version, got[i-1].Version)
			}
		}
	})
}

func TestApplyRefusesTooManyMutations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{})
		o := store.UserOwner("u")
		var muts []store.Mutation
		for i := range store.MaxMutations + 1 {
			muts = append(muts, store.Mutation{Owner: o, Key: fmt.Sprint("k", i), Value: json.RawMessage(`1`)})
		}
		if _, err := s.Apply(context.Background(), "", muts...); err == nil {
			t.Fatalf("an Apply of %d mutations was accepted", len(muts))
		}
		if _, err := s.Apply(context.Background(), "", muts[:store.MaxMutations]...); err != nil {
			t.Fatalf("an Apply of %d mutations: %v", store.MaxMutations, err)
		}
		if snap, _ := s.List(context.Background(), o); len(snap.Entries) != store.MaxMutations {
			t.Errorf("%d keys stored, want %d", len(snap.Entries), store.MaxMutations)
		}
	})
}

func TestApplyRefusesAKeyNamedTwice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{})
		o := store.UserOwner("u")
		MustSet(t, s, o, "visits", `1`)
		_, err := s.Apply(context.Background(), "",
			store.Mutation{Owner: o, Key: "visits", Increment: true},
			store.Mutation{Owner: o, Key: "visits", Increment: true})
		if err == nil {
			t.Fatal("an Apply naming a key twice was accepted")
		}
		if v, _ := get(t, s, o, "visits"); v != "1" {
			t.Errorf("visits = %s after a refused Apply, want 1", v)
		}
	})
}

// A snapshot read again after a restart, before any write, carries the
// version the data was left at (not 0), wherever it is served from.
func TestSnapshotVersionsSurviveARestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s := open(store.Options{})
		last := MustSet(t, s, store.GeneralOwner, "k", `1`)
		s.Close()
		s = open(store.Options{})
		for i := range 2 { // read from the data, then (SQLite) from memory
			snap, err := s.List(context.Background(), store.GeneralOwner)
			if err != nil {
				t.Fatal(err)
			}
			if snap.Version < last.Version {
				t.Errorf("read %d after the restart: version %d, want at least %d", i+1, snap.Version, last.Version)
			}
		}
	})
}
