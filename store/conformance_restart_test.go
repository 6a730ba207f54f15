package store_test

// More of the conformance suite (conformance_test.go): what a restart finds
// again: the values, the versions, the boot number and the secret.

import (
	"context"
	"testing"

	"github.com/storagescopes/app/store"
)

func TestValuesSurviveReopen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
		boot1 := s.Boot().Number
		last := map[store.Owner]store.Entry{}
		for _, o := range owners {
			last[o] = MustSet(t, s, o, "k", `[1,2,3]`)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = be.open(store.Options{})
		for _, o := range owners {
			if v, _ := get(t, s, o, "k"); v != `[1,2,3]` {
				t.Errorf("%s k after reopen = %s, want [1,2,3]", o, v)
			}
		}
		if got := s.Boot().Number; got != boot1+1 {
			t.Errorf("boot number = %d, want %d", got, boot1+1)
		}
		// Versions keep growing across restarts.
		for _, o := range owners {
			if e := MustSet(t, s, o, "k", `0`); e.Version <= last[o].Version {
				t.Errorf("%s's version after reopen = %d, want more than %d", o, e.Version, last[o].Version)
			}
		}
	})
}

func TestSecretIsGeneratedOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
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

// A snapshot read again after a restart, before any write, carries the
// version the data was left at (not 0), wherever it is served from.
func TestSnapshotVersionsSurviveARestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := be.open(store.Options{})
		last := MustSet(t, s, store.GeneralOwner, "k", `1`)
		s.Close()
		s = be.open(store.Options{})
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
