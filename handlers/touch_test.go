package handlers_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storagescopes/app/store"
)

// A browser whose cookie comes back is kept past the one-shot grace (its
// returning request is touched, by one goroutine, not by the request); a
// browser seen once is forgotten after it.
func TestAReturningBrowserOutlivesTheOneShotGrace(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	a := MustStartWith(t, store.Options{Expiry: store.Expiry{OneShot: time.Hour},
		Now: func() time.Time { return time.Unix(0, now.Load()) }})
	once, back := a.NewBrowser(t), a.NewBrowser(t)
	put := func(b *browser, path string) {
		if res := b.API("PUT", path, `"mine"`); res.Status >= 300 {
			t.Fatalf("PUT %s: %d %s", path, res.Status, res.Body)
		}
	}
	put(once, "user/note")
	put(back, "user/note")
	put(back, "general/back") // the cookie came back; the key says whose browser it is
	a.Server.Close()          // the touches waiting are done first
	now.Add(int64(2 * time.Hour))
	swept, err := a.Store.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if swept.Users != 1 {
		t.Errorf("the sweep after the grace forgot %d browsers, want 1 (the one seen once)", swept.Users)
	}
	e, err := a.Store.Get(context.Background(), store.GeneralOwner, "back")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store.Get(context.Background(), store.UserOwner(e.Origin.UserID), "note"); err != nil {
		t.Errorf("the returning browser's note after the grace: %v, want it kept", err)
	}
}
