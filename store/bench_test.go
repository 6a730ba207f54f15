package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/storagescopes/app/store"
)

// go test -bench . ./store: the writes the page makes, from 64 goroutines
// at once as under load (so that they share commits), each goroutine one
// user. Per write: the time, and with -benchmem the garbage.

// BenchmarkFieldChange is a bound control's write: one existing user key.
func BenchmarkFieldChange(b *testing.B) {
	benchWrites(b, func(ctx context.Context, s *store.SQLite, user string, n int) error {
		_, err := set(ctx, s, store.UserOwner(user), "user_note", fmt.Sprintf(`"note %d"`, n), "")
		return err
	})
}

// BenchmarkPageVisit is a page view's write: two counters and a set.
func BenchmarkPageVisit(b *testing.B) {
	benchWrites(b, func(ctx context.Context, s *store.SQLite, user string, _ int) error {
		_, err := s.Apply(ctx, store.Origin{},
			store.Mutation{Owner: store.GeneralOwner, Key: "visits", Increment: true},
			store.Mutation{Owner: store.UserOwner(user), Key: "visits", Increment: true},
			store.Mutation{Owner: store.UserOwner(user), Key: "last_visited_page", Value: json.RawMessage(`"/"`)})
		return err
	})
}

func benchWrites(b *testing.B, write func(ctx context.Context, s *store.SQLite, user string, n int) error) {
	s, _ := MustOpen(b, store.Options{})
	ctx := context.Background()
	var users atomic.Int64
	b.SetParallelism(32) // 64 goroutines on two cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		user := fmt.Sprintf("user-%d", users.Add(1))
		for n := 0; pb.Next(); n++ {
			if err := write(ctx, s, user, n); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
