package handlers

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/storagescopes/app/store"
)

// dict is one scope owner's dictionary as the handlers use it. The SQLite
// scopes, the cookie and the per-page memory all offer it.
type dict interface {
	List(ctx context.Context) (store.Snapshot, error)
	Get(ctx context.Context, key string) (store.Entry, error)
	Set(ctx context.Context, key string, value json.RawMessage) (store.Entry, error)
	Increment(ctx context.Context, key string) (store.Entry, error)
	Delete(ctx context.Context, key string) error
	Clear(ctx context.Context) (int, error)
}

// The scope names of the page and the API.
const (
	scopeGeneral = "general"
	scopeUser    = "user"
	scopeBrowser = "browser"
	scopeTab     = "tab"
	scopeClient  = "client"
)

// Request headers that name the tab and the page load.
const (
	headerTabID    = "X-Tab-ID"
	headerClientID = "X-Client-ID"
	headerCopyFrom = "X-Tab-Copy-From"
)

// dictFor returns the dictionary that scope means for this request. The
// user always comes from the cookie; the tab id from the X-Tab-ID header.
func (s *Server) dictFor(w http.ResponseWriter, r *http.Request, scope string) (dict, error) {
	id := identityFrom(r)
	origin, err := clientID(r, false)
	if err != nil {
		return nil, err
	}
	switch scope {
	case scopeGeneral:
		return sqlDict{s.store, store.GeneralOwner, origin}, nil
	case scopeUser:
		return sqlDict{s.store, store.UserOwner(id.UserID), origin}, nil
	case scopeTab:
		tab, err := tabID(r)
		if err != nil {
			return nil, err
		}
		if err := s.store.Touch(r.Context(), id.UserID, tab, id.Returning); err != nil {
			s.logger(r.Context()).Error("touch tab", "error", err)
		}
		return sqlDict{s.store, store.TabOwner(id.UserID, tab), origin}, nil
	case scopeBrowser:
		return &cookieDict{maxKeys: s.limits.KeysPerOwner, id: id, w: w, r: r, changed: func(version int64, raw []byte) {
			c := store.Change{Owner: store.Owner{Scope: store.Browser, UserID: id.UserID}, Op: store.OpSet,
				Value: raw, Version: version, Origin: origin}
			if err := s.store.Announce(r.Context(), c); err != nil {
				s.logger(r.Context()).Error("announce a browser change", "error", err)
			}
		}}, nil
	case scopeClient:
		client, err := clientID(r, true)
		if err != nil {
			return nil, err
		}
		return s.clients.dict(id.UserID, client), nil
	}
	return nil, notFound(fmt.Sprintf("unknown scope %q: use general, user, browser, tab or client", scope))
}

// tabID returns the request's validated tab id.
func tabID(r *http.Request) (string, error) {
	return checkUUID("X-Tab-ID header (the tab id)", r.Header.Get(headerTabID))
}

// clientID returns the request's validated page-load id; it is optional
// unless required is set.
func clientID(r *http.Request, required bool) (string, error) {
	v := r.Header.Get(headerClientID)
	if v == "" && !required {
		return "", nil
	}
	return checkUUID("X-Client-ID header (the page-load id)", v)
}

// sqlDict is a dictionary kept in the store.
type sqlDict struct {
	st     Store
	owner  store.Owner
	origin string
}

func (d sqlDict) List(ctx context.Context) (store.Snapshot, error) { return d.st.List(ctx, d.owner) }
func (d sqlDict) Get(ctx context.Context, key string) (store.Entry, error) {
	return d.st.Get(ctx, d.owner, key)
}
func (d sqlDict) Set(ctx context.Context, key string, v json.RawMessage) (store.Entry, error) {
	return d.apply(ctx, store.Mutation{Owner: d.owner, Key: key, Value: v})
}
func (d sqlDict) Increment(ctx context.Context, key string) (store.Entry, error) {
	return d.apply(ctx, store.Mutation{Owner: d.owner, Key: key, Increment: true})
}
func (d sqlDict) apply(ctx context.Context, m store.Mutation) (store.Entry, error) {
	entries, err := d.st.Apply(ctx, d.origin, m)
	if err != nil {
		return store.Entry{}, err
	}
	return entries[0], nil
}
func (d sqlDict) Delete(ctx context.Context, key string) error {
	return d.st.Delete(ctx, d.owner, key, d.origin)
}
func (d sqlDict) Clear(ctx context.Context) (int, error) { return d.st.Clear(ctx, d.owner, d.origin) }

// memKV is a small dictionary kept outside the store: the browser scope
// (inside the cookie) and the client scope (in memory) both use it.
type memKV struct {
	Seq     int64               `json:"s"` // the last version handed out; every change takes a new one
	Entries map[string]memEntry `json:"e"`
}

// memEntry is one key of a memKV.
type memEntry struct {
	V   json.RawMessage `json:"v"`
	Ver int64           `json:"n"`
	At  int64           `json:"t"` // unix milliseconds
}

func (m *memKV) entry(key string, e memEntry) store.Entry {
	return store.Entry{Key: key, Value: e.V, Version: e.Ver, UpdatedAt: time.UnixMilli(e.At)}
}

func (m *memKV) list() store.Snapshot {
	entries := make([]store.Entry, 0, len(m.Entries))
	for k, e := range m.Entries {
		entries = append(entries, m.entry(k, e))
	}
	slices.SortFunc(entries, func(a, b store.Entry) int { return cmp.Compare(a.Key, b.Key) })
	return store.Snapshot{Entries: entries, Version: m.Seq}
}

func (m *memKV) get(key string) (store.Entry, error) {
	e, ok := m.Entries[key]
	if !ok {
		return store.Entry{}, store.ErrNotFound
	}
	return m.entry(key, e), nil
}

// set stores v under key, refusing a new key beyond maxKeys.
func (m *memKV) set(key string, v json.RawMessage, maxKeys int) (store.Entry, error) {
	if m.Entries == nil {
		m.Entries = map[string]memEntry{}
	}
	if _, ok := m.Entries[key]; !ok && len(m.Entries) >= maxKeys {
		return store.Entry{}, store.ErrTooManyKeys
	}
	m.Seq++
	e := memEntry{V: v, Ver: m.Seq, At: time.Now().UnixMilli()}
	m.Entries[key] = e
	return m.entry(key, e), nil
}

// increment counts up the integer under key (see store.NextCount).
func (m *memKV) increment(key string, maxKeys int) (store.Entry, error) {
	return m.set(key, store.NextCount(m.Entries[key].V), maxKeys)
}

func (m *memKV) delete(key string) error {
	if _, ok := m.Entries[key]; !ok {
		return store.ErrNotFound
	}
	delete(m.Entries, key)
	m.Seq++
	return nil
}

func (m *memKV) clear() int {
	n := len(m.Entries)
	clear(m.Entries)
	m.Seq++
	return n
}

// cookieDict is the browser scope: a memKV inside the signed and encrypted
// cookie. Every change re-issues the cookie on the response, so it must
// happen before the response body is written. A change that would make the
// cookie too large is refused and leaves the cookie as it was. Each change
// is also pushed to the browser's other pages.
type cookieDict struct {
	maxKeys int
	id      *identity
	w       http.ResponseWriter
	r       *http.Request
	changed func(version int64, contents []byte) // after a change, with the new contents as JSON
}

// contents is the browser scope as the cookie holds it: shared with the
// remembered cookie (see cookieCodec), so it is never changed in place.
func (d *cookieDict) contents() *memKV {
	if m, ok := d.id.session.Values[sessBrowser].(*memKV); ok {
		return m
	}
	return &memKV{}
}

// load returns a copy of the contents to change and save.
func (d *cookieDict) load() *memKV {
	c := d.contents()
	return &memKV{Seq: c.Seq, Entries: maps.Clone(c.Entries)}
}

// save stores m in the cookie; if the cookie would be too large it keeps
// the old content and says so.
func (d *cookieDict) save(m *memKV) error {
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
		raw, _ := json.Marshal(m)
		d.changed(m.Seq, raw)
	}
	return nil
}

func (d *cookieDict) List(context.Context) (store.Snapshot, error) { return d.contents().list(), nil }

func (d *cookieDict) Get(_ context.Context, key string) (store.Entry, error) {
	return d.contents().get(key)
}

func (d *cookieDict) Set(_ context.Context, key string, v json.RawMessage) (store.Entry, error) {
	m := d.load()
	e, err := m.set(key, v, d.maxKeys)
	if err != nil {
		return e, err
	}
	return e, d.save(m)
}

func (d *cookieDict) Increment(_ context.Context, key string) (store.Entry, error) {
	m := d.load()
	e, err := m.increment(key, d.maxKeys)
	if err != nil {
		return e, err
	}
	return e, d.save(m)
}

func (d *cookieDict) Delete(_ context.Context, key string) error {
	m := d.load()
	if err := m.delete(key); err != nil {
		return err
	}
	return d.save(m)
}

func (d *cookieDict) Clear(context.Context) (int, error) {
	m := d.load()
	n := m.clear()
	return n, d.save(m)
}
