package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/storagescopes/app/store"
)

// dictionary is one scope owner's dictionary as the handlers use it: the stored
// scopes (through the store), the browser scope (in the cookie) and the
// client scope (in memory) all offer it, by the rules of store's scope
// model. A change keeps who made it; ifVersion, unless 0, is the version
// the change is based on (store.Absent: none), refused with a
// *store.ConflictError if someone changed the key since.
type dictionary interface {
	List(ctx context.Context) (store.Snapshot, error)
	// View is what a page shows of the dictionary (see store.Window).
	View(ctx context.Context, w store.Window) (store.View, error)
	Get(ctx context.Context, key string) (store.Entry, error)
	Set(ctx context.Context, key string, value json.RawMessage, ifVersion int64) (store.Entry, error)
	Increment(ctx context.Context, key string) (store.Entry, error)
	// Delete returns the delete's version.
	Delete(ctx context.Context, key string, ifVersion int64) (int64, error)
	// Clear returns how many keys there were and the clear's version.
	Clear(ctx context.Context) (int, int64, error)
}

// dictionaryFor returns the dictionary that scope means for the request r from id:
// the user comes from the cookie, the tab and the page load from the
// headers (see loadIdentity). Writing to the browser scope re-issues the
// cookie on w.
func (s *Server) dictionaryFor(w http.ResponseWriter, r *http.Request, id *identity, scope store.Scope) (dictionary, error) {
	origin := originOf(id)
	switch scope {
	case store.General:
		return storeDict{s.store, store.GeneralOwner, origin}, nil
	case store.User:
		return storeDict{s.store, store.UserOwner(id.UserID), origin}, nil
	case store.Tab:
		if id.TabID == "" {
			return nil, badRequest(tabIDName + " is missing")
		}
		return storeDict{s.store, store.TabOwner(id.UserID, id.TabID), origin}, nil
	case store.Browser:
		return &cookieDict{limits: s.limits, id: id, origin: origin, w: w, r: r, announce: s.store.Announce, log: s.log}, nil
	case store.Client:
		if id.ClientID == "" {
			return nil, badRequest(clientIDName + " is missing")
		}
		return clientDict{s.clients, origin}, nil
	}
	return nil, notFound(fmt.Sprintf("unknown scope %q: use general, user, browser, tab or client", scope))
}

// originOf is who the request of id writes as: its browser, its tab (and
// the tab's number) and page load, through the API or a page.
func originOf(id *identity) store.Origin {
	return store.Origin{UserID: id.UserID, TabID: id.TabID, Tab: id.Tab, API: id.API, ClientID: id.ClientID}
}

// storeDict is a dictionary kept in the store, SQLite or Redis.
type storeDict struct {
	st     store.Store
	owner  store.Owner
	origin store.Origin
}

func (d storeDict) List(ctx context.Context) (store.Snapshot, error) { return d.st.List(ctx, d.owner) }
func (d storeDict) View(ctx context.Context, w store.Window) (store.View, error) {
	return d.st.View(ctx, d.owner, w)
}
func (d storeDict) Get(ctx context.Context, key string) (store.Entry, error) {
	return d.st.Get(ctx, d.owner, key)
}
func (d storeDict) Set(ctx context.Context, key string, v json.RawMessage, ifVersion int64) (store.Entry, error) {
	return d.apply(ctx, store.Mutation{Owner: d.owner, Key: key, Value: v, IfVersion: ifVersion})
}
func (d storeDict) Increment(ctx context.Context, key string) (store.Entry, error) {
	return d.apply(ctx, store.Mutation{Owner: d.owner, Key: key, Increment: true})
}
func (d storeDict) apply(ctx context.Context, m store.Mutation) (store.Entry, error) {
	entries, err := d.st.Apply(ctx, d.origin, m)
	if err != nil {
		return store.Entry{}, err
	}
	return entries[0], nil
}
func (d storeDict) Delete(ctx context.Context, key string, ifVersion int64) (int64, error) {
	return d.st.Delete(ctx, d.owner, key, d.origin, ifVersion)
}
func (d storeDict) Clear(ctx context.Context) (int, int64, error) {
	return d.st.Clear(ctx, d.owner, d.origin)
}

// clientDict is the dictionary of one page load (store.Clients).
type clientDict struct {
	clients *store.Clients
	origin  store.Origin
}

// do runs f on the page's dictionary.
func (d clientDict) do(f func(m *store.MemDict, l store.Limits) error) error {
	return d.clients.Do(d.origin.UserID, d.origin.ClientID, f)
}

func (d clientDict) List(context.Context) (snap store.Snapshot, err error) {
	err = d.do(func(m *store.MemDict, _ store.Limits) error { snap = m.List(d.origin.UserID); return nil })
	return snap, err
}

func (d clientDict) View(ctx context.Context, w store.Window) (store.View, error) {
	snap, err := d.List(ctx)
	return snap.View(w), err
}

func (d clientDict) Get(_ context.Context, key string) (e store.Entry, err error) {
	err = d.do(func(m *store.MemDict, _ store.Limits) error { e, err = m.Get(d.origin.UserID, key); return err })
	return e, err
}

func (d clientDict) Set(_ context.Context, key string, v json.RawMessage, ifVersion int64) (e store.Entry, err error) {
	err = d.do(func(m *store.MemDict, l store.Limits) error {
		e, err = m.Set(key, v, ifVersion, d.origin, l, time.Now())
		return err
	})
	return e, err
}

func (d clientDict) Increment(_ context.Context, key string) (e store.Entry, err error) {
	err = d.do(func(m *store.MemDict, l store.Limits) error {
		e, err = m.Increment(key, d.origin, l, time.Now())
		return err
	})
	return e, err
}

func (d clientDict) Delete(_ context.Context, key string, ifVersion int64) (version int64, err error) {
	err = d.do(func(m *store.MemDict, _ store.Limits) error {
		version, err = m.Delete(d.origin.UserID, key, ifVersion)
		return err
	})
	return version, err
}

func (d clientDict) Clear(context.Context) (n int, version int64, err error) {
	err = d.do(func(m *store.MemDict, _ store.Limits) error { n, version = m.Clear(); return nil })
	return n, version, err
}
