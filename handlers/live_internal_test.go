package handlers

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/storagescopes/app/store"
)

// A page that goes away after asking to join but before its turn is never
// added: nothing would remove it, and every change of its user would be
// drawn for nobody.
func TestAPageGoneBeforeItsJoinIsNotKept(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "storage.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := New(Config{Store: st, Secrets: []string{"a-secret-a-secret-a-secret-a-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &liveConn{userID: "u", tabID: "t", clientID: "c", ctx: ctx, cancel: cancel}
	cancel(errGone)
	s.hub.leave(c) // what its end does, before the join's turn
	s.hub.join(context.Background(), c, nil)
	if s.hub.anyRecipient("u", "", "") {
		t.Error("a page that had gone away was added to the live set")
	}
}
