package live

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
)

// mustHub is a hub on a store in a temp file, both closed when the test
// ends.
func mustHub(t testing.TB) (*store.SQLite, *Hub) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "storage.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	heads, err := viewmodel.NewHeads("SQLite", time.Hour, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	clients := store.NewClients(store.DefaultLimits, time.Second)
	t.Cleanup(clients.Close)
	h := New(Config{Store: st, Clients: clients, Heads: heads})
	st.Subscribe(h.Committed)
	t.Cleanup(h.Close)
	return st, h
}

// A page that goes away after asking to join but before its turn is never
// added: nothing would remove it, and every change of its user would be
// drawn for nobody.
func TestAPageGoneBeforeItsJoinIsNotKept(t *testing.T) {
	_, h := mustHub(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &conn{userID: "u", tabID: "t", clientID: "c", ctx: ctx, cancel: cancel}
	cancel(errGone)
	h.leave(c) // what its end does, before the join's turn
	h.join(&batch{ctx: context.Background(), counts: map[store.Owner]store.View{}}, c, nil)
	if len(h.recipientList("u", "", "")) > 0 {
		t.Error("a page that had gone away was added to the live set")
	}
}

// A page that stops keeping up is never sent every change: what waits for
// it stays within the outbox's bounds, and once past them its waiting
// changes give way to one fresh view of what it shows, drawn after them.
func TestAPageFarBehindGetsAFreshViewInsteadOfEveryChange(t *testing.T) {
	st, h := mustHub(t)
	c := newConn(Page{UserID: "u", TabID: "t", Tab: 1, ClientID: "c"}, time.Minute)
	c.writing = true // its writer is stuck on a write the page does not read
	h.post(event{join: c})

	const keys = 3 * outboxSlots
	value := json.RawMessage(`"` + strings.Repeat("x", 4000) + `"`)
	for i := range keys {
		if _, err := st.Apply(context.Background(), store.Origin{API: true},
			store.Mutation{Owner: store.GeneralOwner, Key: fmt.Sprintf("k%03d", i), Value: value}); err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		n, bytes := len(c.waiting), c.bytes
		c.mu.Unlock()
		if n > outboxSlots+4 || bytes > outboxBytes+64<<10 {
			t.Fatalf("after %d changes %d messages of %d bytes wait for the page, past the outbox's bounds", i+1, n, bytes)
		}
	}
	// Once the hub has caught up, one fresh view of the general scope waits
	// for the page, then the changes made after it was drawn, one slot per
	// key: between them, every key.
	deadline := time.Now().Add(5 * time.Second)
	countRE := regexp.MustCompile(`id="count-general"[^>]*>\((\d+) keys\)`)
	for {
		c.mu.Lock()
		fresh, after := "", 0
		for _, w := range c.waiting {
			switch {
			case w.slot == slotJoinGeneral:
				fresh, after = string(w.msg), 0
			case isChange(w.slot):
				after++
			}
		}
		behind, n := c.behind, len(c.waiting)
		c.mu.Unlock()
		if m := countRE.FindStringSubmatch(fresh); !behind && m != nil {
			shown, _ := strconv.Atoi(m[1])
			if shown+after == keys {
				if !strings.Contains(fresh, `id="entries-general"`) || n > outboxSlots {
					t.Errorf("the page waits for %d messages, and its fresh view lacks its inspector: %.200s", n, fresh)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fresh view and changes after it that make all %d keys wait for the page (behind %v, %d waiting): %.300s", keys, behind, n, fresh)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
