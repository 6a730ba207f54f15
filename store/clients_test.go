package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"

	"github.com/storagescopes/app/store"
)

// note sets the page's key "k" to v.
func note(t *testing.T, c *store.Clients, user, client, v string) {
	t.Helper()
	if _, err := c.Dict(store.Origin{UserID: user, ClientID: client}).Set(context.Background(), "k", json.RawMessage(v)); err != nil {
		t.Fatal(err)
	}
}

// held is what the page's key "k" holds ("" for nothing).
func held(c *store.Clients, user, client string) string {
	e, _ := c.Dict(store.Origin{UserID: user, ClientID: client}).Get(context.Background(), "k")
	return string(e.Value)
}

// A page's client scope lives while its page is connected and a grace
// period after; a page that reconnects within the grace keeps it. (In a
// bubble the clock is fake: the sweeps run at once, and exactly.)
func TestClientScopeOutlivesItsPageByTheGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := store.NewClients(store.Limits{}, 5*time.Second)
		defer c.Close()
		c.Attach("u", "p1")
		note(t, c, "u", "p1", `"kept"`)
		time.Sleep(time.Hour) // connected: kept however long
		if got := held(c, "u", "p1"); got != `"kept"` {
			t.Fatalf("a connected page's scope holds %q, want \"kept\"", got)
		}
		c.Detach("u", "p1")
		time.Sleep(4 * time.Second)
		c.Attach("u", "p1") // back within the grace
		c.Detach("u", "p1")
		time.Sleep(4 * time.Second)
		synctest.Wait()
		if got := held(c, "u", "p1"); got != `"kept"` {
			t.Fatalf("a page back within the grace holds %q, want \"kept\"", got)
		}
		time.Sleep(7 * time.Second) // past the grace since its last look (and the sweep after it)
		synctest.Wait()
		if got := held(c, "u", "p1"); got != "" {
			t.Errorf("a page gone past the grace still holds %q", got)
		}
	})
}

// A user has at most ClientsPerUser page scopes: a new one evicts the least
// recently used, a page without a connection before one with.
func TestClientScopesPerUserAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := store.NewClients(store.Limits{ClientsPerUser: 2}, time.Hour)
		defer c.Close()
		c.Attach("u", "connected")
		note(t, c, "u", "connected", `1`)
		time.Sleep(time.Second)
		note(t, c, "u", "idle", `2`)
		time.Sleep(time.Second)
		note(t, c, "u", "new", `3`) // evicts idle, though connected is older
		note(t, c, "other", "p", `4`)
		if held(c, "u", "connected") != "1" || held(c, "u", "new") != "3" || held(c, "other", "p") != "4" {
			t.Error("a kept page scope lost its value")
		}
		if got := held(c, "u", "idle"); got != "" {
			t.Errorf("the idle page's scope was kept (%q) over the bound", got)
		}
	})
}
