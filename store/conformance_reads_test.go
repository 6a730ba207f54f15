package store_test

// More of the conformance suite (conformance_test.go): what List and View
// answer.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/storagescopes/app/store"
)

// What List answers (SQLite: from the snapshots it keeps in memory) is what
// is stored, after concurrent writes, deletes, clears and reads.
func TestListedSnapshotsMatchTheData(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
		ctx := context.Background()
		owners := []store.Owner{store.GeneralOwner, store.UserOwner("u"), store.TabOwner("u", "t")}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					o := owners[(g+i)%len(owners)]
					key := fmt.Sprintf("k%d", i%7)
					var err error
					switch i % 11 {
					case 3:
						if _, err = s.Delete(ctx, o, key, store.Origin{}, 0); errors.Is(err, store.ErrNotFound) {
							err = nil
						}
					case 7:
						_, _, err = s.Clear(ctx, o, store.Origin{})
					default:
						_, err = set(ctx, s, o, key, fmt.Sprintf(`"%d-%d"`, g, i), "")
					}
					if err != nil {
						t.Error(err)
					}
					if _, err := s.List(ctx, o); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		check := func(when string, o store.Owner) {
			t.Helper()
			snap, err := s.List(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmt.Sprint(entriesOf(snap)), fmt.Sprint(be.stored(o)); got != want {
				t.Errorf("%s: %s lists %s, the data holds %s", when, o, got, want)
			}
		}
		for _, o := range owners {
			check("after the concurrent writes", o)
		}
		// Then each kind of change alone, on owners just listed.
		for _, o := range owners {
			for _, step := range []struct {
				name   string
				change func() error
			}{
				{"a set", func() error { _, err := set(ctx, s, o, "x", `"x"`, ""); return err }},
				{"an increment", func() error { _, err := increment(ctx, s, o, "n"); return err }},
				{"a delete", func() error { _, err := s.Delete(ctx, o, "x", store.Origin{}, 0); return err }},
				{"a clear", func() error { _, _, err := s.Clear(ctx, o, store.Origin{}); return err }},
			} {
				if err := step.change(); err != nil {
					t.Fatalf("%s of %s: %v", step.name, o, err)
				}
				check("after "+step.name, o)
			}
		}
	})
}

// A page is sized by what it shows: View answers the keys a window names,
// its rows (after a key, under a filter, at most a limit, and whether more
// follow) and the latest changes, and follows every change as List does.
func TestViewShowsWhatAWindowAsks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
		ctx := context.Background()
		o := store.GeneralOwner
		for i := range 30 {
			MustSet(t, s, o, fmt.Sprintf("k%02d", i), strconv.Itoa(i))
		}
		MustSet(t, s, o, "Key-One", `"upper"`)
		last := MustSet(t, s, o, "k05", `"again"`)
		view := func(w store.Window) store.View {
			t.Helper()
			v, err := s.View(ctx, o, w)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		keys := func(entries []store.Entry) string {
			var ks []string
			for _, e := range entries {
				ks = append(ks, e.Key)
			}
			return strings.Join(ks, " ")
		}
		for _, tc := range []struct {
			name       string
			w          store.Window
			rows, more string
		}{
			{"the first rows", store.Window{Limit: 3}, "Key-One k00 k01", "more"},
			{"after a key", store.Window{After: "k26", Limit: 5}, "k27 k28 k29", ""},
			{"after a key that is not there", store.Window{After: "k1", Limit: 2}, "k10 k11", "more"},
			{"a filter, in any case", store.Window{Filter: "KEY", Limit: 5}, "Key-One", ""},
			{"a filter and a limit", store.Window{Filter: "2", After: "k20", Limit: 3}, "k21 k22 k23", "more"},
			{"no rows", store.Window{}, "", ""},
		} {
			v := view(tc.w)
			if got := keys(v.Rows); got != tc.rows {
				t.Errorf("%s: rows %q, want %q", tc.name, got, tc.rows)
			}
			if (tc.more != "") != v.More {
				t.Errorf("%s: more = %v", tc.name, v.More)
			}
			if v.Keys != 31 || v.Version < last.Version {
				t.Errorf("%s: %d keys at v%d, want 31 at v%d or later", tc.name, v.Keys, v.Version, last.Version)
			}
		}
		v := view(store.Window{Named: []string{"k05", "missing"}, Latest: 2})
		if len(v.Named) != 2 || string(v.Named[0].Value) != `"again"` || v.Named[1].Version != 0 || v.Named[1].Key != "missing" {
			t.Errorf("named = %+v, want k05 and an absent missing", v.Named)
		}
		if got := keys(v.Latest); got != "k05 Key-One" {
			t.Errorf("latest = %q, want k05 Key-One (newest first)", got)
		}
		deleted, err := s.Delete(ctx, o, "k00", store.Origin{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if v := view(store.Window{Limit: 2}); v.Keys != 30 || keys(v.Rows) != "Key-One k01" || v.Version < deleted {
			t.Errorf("after a delete: %d keys, rows %q at v%d; want 30, Key-One k01, v%d or later", v.Keys, keys(v.Rows), v.Version, deleted)
		}
	})
}
