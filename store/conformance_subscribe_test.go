package store_test

// More of the conformance suite (conformance_test.go): the changes told to
// a subscriber.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/storagescopes/app/store"
)

func TestSubscribeReportsChangesInOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		var mu sync.Mutex
		var got []store.Change
		s := be.open(store.Options{})
		s.Subscribe(func(cs []store.Change) {
			mu.Lock()
			got = append(got, cs...)
			mu.Unlock()
		})
		ctx := context.Background()
		o := store.UserOwner("u")
		set1 := MustSet(t, s, o, "a", `1`)
		if _, err := s.Delete(ctx, o, "a", store.Origin{ClientID: "tab-B"}, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Delete(ctx, o, "missing", store.Origin{ClientID: "tab-B"}, 0); !errors.Is(err, store.ErrNotFound) { // reports nothing
			t.Fatalf("delete a missing key: got %v, want ErrNotFound", err)
		}
		if _, err := set(ctx, s, store.GeneralOwner, "marker", `1`, "tab-A"); err != nil {
			t.Fatal(err)
		}
		// Redis reports through pub/sub: wait for the marker, after which
		// everything before it has arrived.
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := len(got)
			last := store.Change{}
			if n > 0 {
				last = got[n-1]
			}
			mu.Unlock()
			if last.Key == "marker" && !be.perOwner {
				break
			}
			if be.perOwner && n >= 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the marker was not reported within 5s; changes so far: %+v", got)
			}
			time.Sleep(5 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if be.perOwner {
			// Each owner's changes come in order; a cluster's shards do not
			// wait for one another.
			slices.SortStableFunc(got, func(a, b store.Change) int {
				return cmp.Compare(boolInt(a.Owner == store.GeneralOwner), boolInt(b.Owner == store.GeneralOwner))
			})
		}
		want := []string{
			fmt.Sprintf("set user/u a origin= v%d", set1.Version),
			"delete user/u a origin=tab-B",
			"set general marker origin=tab-A",
		}
		if len(got) != len(want) {
			t.Fatalf("changes = %+v, want %d", got, len(want))
		}
		for i, c := range got {
			line := fmt.Sprintf("%s %s %s origin=%s", c.Op, c.Owner, c.Key, c.Origin.ClientID)
			if i == 0 {
				line += fmt.Sprintf(" v%d", c.Version)
			}
			if line != want[i] {
				t.Errorf("change %d = %s, want %s", i, line, want[i])
			}
			if i > 0 && (!be.perOwner || c.Owner == got[i-1].Owner) && c.Version <= got[i-1].Version {
				t.Errorf("change %d has version %d, not above %d", i, c.Version, got[i-1].Version)
			}
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
