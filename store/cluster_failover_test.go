package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/store/redistest"
)

// A primary of the cluster killed with kill -9, three times in a run (a
// different one each time, each one back as a replica), during a stream of
// writes from several browsers through two stores (two instances), after
// its replica fell behind (frozen for a moment, as a machine that stops
// answering): with RedisWait 1 no acknowledged write is lost, every refusal
// is a fault (never another error), and writes resume by themselves each
// time. What RedisWait 0 lost the same way is logged: on loopback the
// kernels' socket buffers hold what a frozen replica has not read, and a
// killed primary's are still sent, so it is often nothing here (the
// standalone test, TestAcknowledgedWritesSurviveTheLossOfThePrimary, shows
// the loss).
func TestClusterFailoverLosesNoAcknowledgedWrite(t *testing.T) {
	for _, wait := range []int{1, 0} {
		t.Run(fmt.Sprint("wait ", wait), func(t *testing.T) {
			c := redistest.StartCluster(t)
			a := MustOpenRedis(t, c.URL, store.Options{Redis: store.RedisOptions{Wait: wait}})
			b := MustOpenRedis(t, c.URL, store.Options{Redis: store.RedisOptions{Wait: wait}})

			// Each write carries 8 KiB, so that a frozen replica's socket
			// fills and the copies wait in the primary, where a kill loses them.
			pad := json.RawMessage(`"` + strings.Repeat("x", 8<<10) + `"`)
			var users []string
			for i := range 12 {
				users = append(users, fmt.Sprint("browser", i))
			}
			w := startWriting(t, []*store.Redis{a, b}, users, false, func(user, _ string, n int) []store.Mutation {
				return counter(user, n, store.Mutation{Owner: store.UserOwner(user), Key: "pad", Value: pad})
			})
			// allMoved says every browser had a write acknowledged since before.
			allMoved := func(before map[store.Owner]int) bool {
				acked := w.Acked()
				for o := range acked {
					if acked[o] <= before[o] {
						return false
					}
				}
				return len(acked) == len(users)
			}
			for round := range 3 {
				time.Sleep(300 * time.Millisecond)
				var before map[store.Owner]int
				start, err := c.FailOver(round, 300*time.Millisecond, func() { before = w.Acked() })
				if err != nil {
					t.Fatal(err)
				}
				for deadline := time.Now().Add(30 * time.Second); !allMoved(before); time.Sleep(10 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("round %d: writes did not resume within 30 s of the failover", round+1)
					}
				}
				t.Logf("round %d: every browser's writes went through again %s after the kill", round+1, time.Since(start).Round(10*time.Millisecond))
			}
			w.Stop()
			if err := c.WaitHealthy(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			after := MustOpenRedis(t, c.URL, store.Options{})
			writes, lost := lostWrites(t, after, w.Acked())
			t.Logf("-redis-wait %d: %d writes acknowledged, %d lost, %d refused as faults", wait, writes, lost, w.faults)
			if wait > 0 && lost > 0 {
				t.Errorf("%d acknowledged writes were lost", lost)
			}
			w.CheckCounts(t, after, wait > 0)
		})
	}
}

// With RedisWait 1 on a cluster, health asks every primary: one that lost
// its replica makes the storage "no replica" every time it is asked (its
// slots' writes are refused), and it is healthy again once the replica is
// back.
func TestClusterHealthNamesAPrimaryWithoutItsReplica(t *testing.T) {
	c := redistest.StartCluster(t)
	s := MustOpenRedis(t, c.URL, store.Options{Redis: store.RedisOptions{Wait: 1}})
	ctx := context.Background()
	if err := s.Health(ctx); err != nil {
		t.Fatalf("health of a whole cluster: %v", err)
	}
	primaries, err := c.Primaries()
	if err != nil {
		t.Fatal(err)
	}
	replica, err := c.ReplicaOf(primaries[0])
	if err != nil {
		t.Fatal(err)
	}
	replica.Kill()
	for deadline := time.Now().Add(10 * time.Second); !errors.Is(s.Health(ctx), store.ErrNoReplica); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("health did not name the primary without its replica")
		}
	}
	for range 10 { // whichever node a command would pick
		if err := s.Health(ctx); !errors.Is(err, store.ErrNoReplica) {
			t.Fatalf("health with a primary without its replica: %v, want ErrNoReplica", err)
		}
	}
	if err := replica.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplicated(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(ctx); err != nil {
		t.Errorf("health once the replica is back: %v", err)
	}
}
