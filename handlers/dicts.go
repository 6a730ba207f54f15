package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/storagescopes/app/store"
)

// dict is one scope owner's dictionary as the handlers use it: the stored
// scopes (through the store), the browser scope (in the cookie) and the
// client scope (in memory) all offer it, by the rules of store's scope
// model. A change keeps who made it; ifVersion, unless 0, is the version
// the change is based on (store.Absent: none), refused with a
// *store.ConflictError if someone changed the key since.
type dict interface {
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

// dict returns the dictionary that scope means for this request: the user
// comes from the cookie, the tab and the page load from the headers (see
// identity). Writing to the browser scope re-issues the cookie on w.
func (s *Server) dict(w http.ResponseWriter, r *http.Request, scope store.Scope) (dict, error) {
	id := identityFrom(r)
	origin := id.origin(isAPI(r))
	switch scope {
	case store.General:
		return storeDict{s.store, store.GeneralOwner, origin, id}, nil
	case store.User:
		return storeDict{s.store, store.UserOwner(id.UserID), origin, id}, nil
	case store.Tab:
		tab, err := id.tab()
		if err != nil {
			return nil, err
		}
		return storeDict{s.store, store.TabOwner(id.UserID, tab), origin, id}, nil
	case store.Browser:
		return &cookieDict{limits: s.limits, id: id, w: w, r: r, by: s.memOrigin(r, origin),
			changed: func(op store.Op, key string, version int64, contents []byte) {
				by, _ := s.memOrigin(r, origin)(r.Context())
				c := store.Change{Owner: store.Owner{Scope: store.Browser, UserID: id.UserID}, Op: op, Key: key,
					Value: contents, Version: version, At: time.Now().UnixMilli(),
					Origin: store.Origin{UserID: id.UserID, Tab: by.Tab, API: by.API, ClientID: id.ClientID}}
				if err := s.store.Announce(r.Context(), c); err != nil {
					s.logger(r.Context()).Error("announce a browser change", "error", err)
				}
			}}, nil
	case store.Client:
		client, err := id.client()
		if err != nil {
			return nil, err
		}
		return s.clients.dict(id.UserID, client, s.memOrigin(r, origin)), nil
	}
	return nil, notFound(fmt.Sprintf("unknown scope %q: use general, user, browser, tab or client", scope))
}

// memOrigin is who a change of a scope kept outside the store comes from:
// the request's tab (numbered when first needed) or the API.
func (s *Server) memOrigin(r *http.Request, o store.Origin) func(context.Context) (memOrigin, error) {
	return func(ctx context.Context) (memOrigin, error) {
		if o.API {
			return memOrigin{API: true}, nil
		}
		n, err := s.tabNumber(ctx, identityFrom(r))
		return memOrigin{Tab: n}, err
	}
}

// keyParam returns the {key} of the URL, decoded and checked. chi matches
// on the escaped path when the URL has escapes that decoding would lose.
func (s *Server) keyParam(r *http.Request) (string, error) {
	key := chi.URLParam(r, "key")
	if r.URL.RawPath != "" {
		var err error
		if key, err = url.PathUnescape(key); err != nil {
			return "", badRequest("key is not a valid URL path segment")
		}
	}
	return key, s.limits.CheckKey(key)
}

// storeDict is a dictionary kept in the store, SQLite or Redis.
type storeDict struct {
	st     store.Store
	owner  store.Owner
	origin store.Origin
	id     *identity // learns its tab's number from the writes
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
	d.id.learnTab(entries[0].Origin)
	return entries[0], nil
}
func (d storeDict) Delete(ctx context.Context, key string, ifVersion int64) (int64, error) {
	return d.st.Delete(ctx, d.owner, key, d.origin, ifVersion)
}
func (d storeDict) Clear(ctx context.Context) (int, int64, error) {
	return d.st.Clear(ctx, d.owner, d.origin)
}

// memKV is a small dictionary kept outside the store, by the store's rules:
// the browser scope (inside the cookie) and the client scope (in memory)
// both use it. Its JSON form is short, for the cookie. The browser it
// belongs to made every change in it: an entry keeps only which tab, or the
// API.
type memKV struct {
	Seq     int64               `json:"s"` // the last version handed out; every change takes a new one
	Entries map[string]memEntry `json:"e"`
}

// memEntry is one key of a memKV.
type memEntry struct {
	V   json.RawMessage `json:"v"`
	Ver int64           `json:"n"`
	At  int64           `json:"t"` // unix milliseconds
	memOrigin
}

// memOrigin is who changed a memEntry: a tab of its browser, or the API.
type memOrigin struct {
	Tab int  `json:"b,omitempty"`
	API bool `json:"a,omitempty"`
}

func (m *memKV) entry(user, key string, e memEntry) store.Entry {
	return store.Entry{Key: key, Value: e.V, Version: e.Ver, UpdatedAt: time.UnixMilli(e.At),
		Origin: store.Origin{UserID: user, Tab: e.Tab, API: e.API}}
}

// list is the dictionary of user's browser (or page) as a snapshot.
func (m *memKV) list(user string) store.Snapshot {
	entries := make([]store.Entry, 0, len(m.Entries))
	for k, e := range m.Entries {
		entries = append(entries, m.entry(user, k, e))
	}
	slices.SortFunc(entries, func(a, b store.Entry) int { return strings.Compare(a.Key, b.Key) })
	return store.Snapshot{Entries: entries, Version: m.Seq}
}

func (m *memKV) get(user, key string) (store.Entry, error) {
	e, ok := m.Entries[key]
	if !ok {
		return store.Entry{}, store.ErrNotFound
	}
	return m.entry(user, key, e), nil
}

// set stores v under key, refusing what the limits refuse, a new key
// beyond KeysPerOwner, and a change based on another version.
func (m *memKV) set(user, key string, v json.RawMessage, ifVersion int64, by memOrigin, l store.Limits) (store.Entry, error) {
	if err := l.Check(store.Mutation{Key: key, Value: v}); err != nil {
		return store.Entry{}, err
	}
	old, exists := m.Entries[key]
	var current store.Entry
	if exists {
		current = m.entry(user, key, old)
	}
	if err := store.CheckVersion(key, current, ifVersion); err != nil {
		return store.Entry{}, err
	}
	if !exists && len(m.Entries) >= l.KeysPerOwner {
		return store.Entry{}, store.ErrTooManyKeys
	}
	if m.Entries == nil {
		m.Entries = map[string]memEntry{}
	}
	m.Seq++
	e := memEntry{V: v, Ver: m.Seq, At: time.Now().UnixMilli(), memOrigin: by}
	m.Entries[key] = e
	return m.entry(user, key, e), nil
}

// increment counts up the value under key, by store.NextCount.
func (m *memKV) increment(user, key string, by memOrigin, l store.Limits) (store.Entry, error) {
	return m.set(user, key, store.NextCount(m.Entries[key].V), 0, by, l)
}

// delete removes key and returns the delete's version.
func (m *memKV) delete(user, key string, ifVersion int64) (int64, error) {
	e, ok := m.Entries[key]
	if !ok {
		return 0, store.ErrNotFound
	}
	if err := store.CheckVersion(key, m.entry(user, key, e), ifVersion); err != nil {
		return 0, err
	}
	delete(m.Entries, key)
	m.Seq++
	return m.Seq, nil
}

// clear removes every key and returns how many there were and the clear's
// version.
func (m *memKV) clear() (int, int64) {
	n := len(m.Entries)
	clear(m.Entries)
	m.Seq++
	return n, m.Seq
}

// cookieDict is the browser scope: a memKV inside the signed and encrypted
// cookie. Every change re-issues the cookie on the response, so it must
// happen before the response body is written. A change that would make the
// cookie too large is refused and leaves the cookie as it was. Each change
// is also announced, for the browser's other pages.
type cookieDict struct {
	limits  store.Limits
	id      *identity
	w       http.ResponseWriter
	r       *http.Request
	by      func(context.Context) (memOrigin, error)
	changed func(op store.Op, key string, version int64, contents []byte) // after a change, with the new contents as JSON
}

// browserScope is the browser scope as the cookie holds it: shared with
// the remembered cookie (see cookieCodec), so it is never changed in place.
func browserScope(id *identity) *memKV {
	if m, ok := id.session.Values[sessBrowser].(*memKV); ok {
		return m
	}
	return &memKV{}
}

// load returns a copy of the contents to change and save.
func (d *cookieDict) load() *memKV {
	c := browserScope(d.id)
	return &memKV{Seq: c.Seq, Entries: maps.Clone(c.Entries)}
}

// save stores m in the cookie; if the cookie would be too large it keeps
// the old content and says so.
func (d *cookieDict) save(m *memKV, op store.Op, key string) error {
	old := d.id.session.Values[sessBrowser]
	d.id.session.Values[sessBrowser] = m
	if err := d.id.saveCookie(d.w, d.r); err != nil {
		d.id.session.Values[sessBrowser] = old
		if err := d.id.saveCookie(d.w, d.r); err != nil {
			return fmt.Errorf("restore cookie: %w", err)
		}
		return &Error{Status: http.StatusRequestEntityTooLarge,
			Message: "browser storage is full: the cookie holds about 4 KiB in all; delete some keys first"}
	}
	if d.changed != nil {
		raw, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode the browser scope: %w", err)
		}
		d.changed(op, key, m.Seq, raw)
	}
	return nil
}

func (d *cookieDict) List(context.Context) (store.Snapshot, error) {
	return browserScope(d.id).list(d.id.UserID), nil
}

func (d *cookieDict) View(_ context.Context, w store.Window) (store.View, error) {
	return browserScope(d.id).list(d.id.UserID).View(w), nil
}

func (d *cookieDict) Get(_ context.Context, key string) (store.Entry, error) {
	return browserScope(d.id).get(d.id.UserID, key)
}

func (d *cookieDict) Set(ctx context.Context, key string, v json.RawMessage, ifVersion int64) (store.Entry, error) {
	by, err := d.by(ctx)
	if err != nil {
		return store.Entry{}, err
	}
	m := d.load()
	e, err := m.set(d.id.UserID, key, v, ifVersion, by, d.limits)
	if err != nil {
		return e, err
	}
	return e, d.save(m, store.OpSet, key)
}

func (d *cookieDict) Increment(ctx context.Context, key string) (store.Entry, error) {
	by, err := d.by(ctx)
	if err != nil {
		return store.Entry{}, err
	}
	m := d.load()
	e, err := m.increment(d.id.UserID, key, by, d.limits)
	if err != nil {
		return e, err
	}
	return e, d.save(m, store.OpSet, key)
}

func (d *cookieDict) Delete(_ context.Context, key string, ifVersion int64) (int64, error) {
	m := d.load()
	version, err := m.delete(d.id.UserID, key, ifVersion)
	if err != nil {
		return 0, err
	}
	return version, d.save(m, store.OpDelete, key)
}

func (d *cookieDict) Clear(context.Context) (int, int64, error) {
	m := d.load()
	n, version := m.clear()
	return n, version, d.save(m, store.OpClear, "")
}
