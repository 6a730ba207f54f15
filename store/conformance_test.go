package store_test

// The conformance suite: every test here runs against SQLite, against a
// real redis-server and against a real six-node Redis Cluster, so that every
// backend keeps the same semantics.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storagescopes/app/store"
)

// backend is one backend under test. open opens an instance of it; every
// call opens another instance on the same data (a restart, or a second
// server). stored reads an owner's keys straight from the data, past
// everything the store keeps in memory, as entriesOf writes them.
type backend struct {
	open   func(opts store.Options) store.Store
	stored func(o store.Owner) []string
	// perOwner says versions are ordered per owner only, not across
	// owners: a cluster counts them per slot.
	perOwner bool
}

// forEachBackend runs test against SQLite, against Redis and against a
// Redis Cluster.
func forEachBackend(t *testing.T, test func(t *testing.T, be backend)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "storage.db")
		test(t, backend{
			open: func(opts store.Options) store.Store {
				t.Helper()
				s, err := store.Open(context.Background(), path, opts)
				if err != nil {
					t.Fatalf("open store: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			},
			stored: func(o store.Owner) []string {
				t.Helper()
				db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				rows, err := db.Query(`SELECT key, value, version, origin_user, origin_tab, origin_api FROM entries
					WHERE scope = ? AND user_id = ? AND tab_id = ? ORDER BY key`, o.Scope, o.UserID, o.TabID)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				var out []string
				for rows.Next() {
					var key, value string
					var version int64
					var origin store.Origin
					if err := rows.Scan(&key, &value, &version, &origin.UserID, &origin.Tab, &origin.API); err != nil {
						t.Fatal(err)
					}
					out = append(out, entryString(key, value, version, origin))
				}
				return out
			},
		})
	})
	t.Run("redis", func(t *testing.T) { test(t, redisBackend(t, MustRedis(t), false)) })
	t.Run("cluster", func(t *testing.T) { test(t, redisBackend(t, mustCluster(t), true)) })
}

func TestIncrementIsExactUnderConcurrency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
		o := store.UserOwner("u1")
		const n = 50
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if _, err := increment(context.Background(), s, o, "visits"); err != nil {
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

// A counter counts from what is stored now, whatever changed it last: a
// set, a delete, a clear, a tab copy, a tab evicted over the cap. (The
// SQLite writer remembers the values it wrote; each of these must reach
// what it remembers.)
func TestIncrementCountsFromWhatIsStored(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s := be.open(store.Options{Now: c.Now, Limits: store.Limits{TabsPerUser: 2}})
		ctx := context.Background()
		count := func(o store.Owner) string {
			t.Helper()
			c.Advance(time.Second) // tabs are evicted by last use
			e, err := increment(ctx, s, o, "visits")
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
				if _, err := s.Delete(ctx, user, "visits", store.Origin{}, 0); err != nil {
					t.Fatal(err)
				}
			}, user, "1"},
			{"after a clear", func() {
				count(user)
				if _, _, err := s.Clear(ctx, user, store.Origin{}); err != nil {
					t.Fatal(err)
				}
			}, user, "1"},
			{"in a copied tab", func() {
				count(store.TabOwner("u", "t1"))
				count(store.TabOwner("u", "t1"))
				if err := s.CopyTab(ctx, "u", "t1", "t2"); err != nil {
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
				if _, err := s.Apply(ctx, store.Origin{},
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
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
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

// Apply is all or nothing: two new keys of one owner need room for two.
func TestApplyRefusesWhenTheNewKeysTogetherDoNotFit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{Limits: store.Limits{KeysPerOwner: 3}})
		o := store.UserOwner("u")
		MustSet(t, s, o, "a", `1`)
		MustSet(t, s, o, "b", `1`) // room for one more key, not two
		_, err := s.Apply(context.Background(), store.Origin{},
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
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
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
		got, err := s.Apply(context.Background(), store.Origin{}, muts...)
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
			for j := range i {
				if (!be.perOwner || steps[j].m.Owner == st.m.Owner) && e.Version <= got[j].Version {
					t.Errorf("versions do not grow in order: %d after %d", e.Version, got[j].Version)
				}
			}
		}
	})
}

func TestApplyRefusesTooManyMutations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
		o := store.UserOwner("u")
		var muts []store.Mutation
		for i := range store.MaxMutations + 1 {
			muts = append(muts, store.Mutation{Owner: o, Key: fmt.Sprint("k", i), Value: json.RawMessage(`1`)})
		}
		if _, err := s.Apply(context.Background(), store.Origin{}, muts...); err == nil {
			t.Fatalf("an Apply of %d mutations was accepted", len(muts))
		}
		if _, err := s.Apply(context.Background(), store.Origin{}, muts[:store.MaxMutations]...); err != nil {
			t.Fatalf("an Apply of %d mutations: %v", store.MaxMutations, err)
		}
		if snap, _ := s.List(context.Background(), o); len(snap.Entries) != store.MaxMutations {
			t.Errorf("%d keys stored, want %d", len(snap.Entries), store.MaxMutations)
		}
	})
}

func TestApplyRefusesAKeyNamedTwice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
		o := store.UserOwner("u")
		MustSet(t, s, o, "visits", `1`)
		_, err := s.Apply(context.Background(), store.Origin{},
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

// redisBackend is the Redis store on url, a cluster's when cluster is set.
func redisBackend(t *testing.T, url string, cluster bool) backend {
	return backend{
		perOwner: cluster,
		open: func(opts store.Options) store.Store {
			t.Helper()
			return MustOpenRedis(t, url, opts)
		},
		stored: func(o store.Owner) []string {
			t.Helper()
			fields, err := mustUniversalClient(t, url, cluster).HGetAll(context.Background(), redisKeyOf(o, cluster)).Result()
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for key, raw := range fields {
				// "version ms @kind:tab:user json"
				f := strings.SplitN(raw, " ", 4)
				version, _ := strconv.ParseInt(f[0], 10, 64)
				kind, rest, _ := strings.Cut(strings.TrimPrefix(f[2], "@"), ":")
				tab, user, _ := strings.Cut(rest, ":")
				n, _ := strconv.Atoi(tab)
				out = append(out, entryString(key, f[3], version, store.Origin{UserID: user, Tab: n, API: kind == "a"}))
			}
			slices.Sort(out)
			return out
		},
	}
}
