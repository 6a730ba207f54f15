package handlers

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/storagescopes/app/store"
)

// dict is one scope owner's dictionary as the handlers use it. The SQLite
// scopes, the cookie and the per-page memory all offer it.
type dict interface {
	List(ctx context.Context) ([]store.Entry, error)
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
		return sqlDict{s.store, store.TabOwner(id.UserID, tab), origin}, nil
	case scopeBrowser:
		return &cookieDict{id: id, w: w, r: r}, nil
	}
	return nil, notFound(fmt.Sprintf("unknown scope %q: use general, user, tab or browser", scope))
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
	st     *store.Store
	owner  store.Owner
	origin string
}

func (d sqlDict) List(ctx context.Context) ([]store.Entry, error) { return d.st.List(ctx, d.owner) }
func (d sqlDict) Get(ctx context.Context, key string) (store.Entry, error) {
	return d.st.Get(ctx, d.owner, key)
}
func (d sqlDict) Set(ctx context.Context, key string, v json.RawMessage) (store.Entry, error) {
	return d.st.Set(ctx, d.owner, key, v, d.origin)
}
func (d sqlDict) Increment(ctx context.Context, key string) (store.Entry, error) {
	return d.st.Increment(ctx, d.owner, key, d.origin)
}
func (d sqlDict) Delete(ctx context.Context, key string) error {
	return d.st.Delete(ctx, d.owner, key, d.origin)
}
func (d sqlDict) Clear(ctx context.Context) (int, error) { return d.st.Clear(ctx, d.owner, d.origin) }

// cookieDict is the browser scope: values kept inside the signed and
// encrypted cookie. Every change re-issues the cookie on the response, so it
// must happen before the response body is written. A change that would make
// the cookie too large is refused and leaves the cookie as it was.
type cookieDict struct {
	id *identity
	w  http.ResponseWriter
	r  *http.Request
}

// browserEntry is one browser-scope key inside the cookie.
type browserEntry struct {
	V   json.RawMessage `json:"v"`
	Ver int64           `json:"n"`
	At  int64           `json:"t"` // unix milliseconds
}

// browserData is the browser scope as kept in the cookie: the entries and
// the last version handed out.
type browserData struct {
	Seq     int64                   `json:"s"`
	Entries map[string]browserEntry `json:"e"`
}

func (d *cookieDict) load() browserData {
	var b browserData
	if raw, ok := d.id.session.Values[sessBrowser].(string); ok {
		json.Unmarshal([]byte(raw), &b) // a cookie we signed holds what we wrote
	}
	if b.Entries == nil {
		b.Entries = map[string]browserEntry{}
	}
	return b
}

// save stores b in the cookie; if the cookie would be too large it keeps the
// old content and says so.
func (d *cookieDict) save(b browserData) error {
	raw, _ := json.Marshal(b)
	old := d.id.session.Values[sessBrowser]
	d.id.session.Values[sessBrowser] = string(raw)
	if err := d.id.saveCookie(d.w, d.r); err != nil {
		d.id.session.Values[sessBrowser] = old
		if err := d.id.saveCookie(d.w, d.r); err != nil {
			return fmt.Errorf("restore cookie: %w", err)
		}
		return &Error{Status: http.StatusRequestEntityTooLarge,
			Message: "browser storage is full: the cookie holds about 4 KiB in all; delete some keys first"}
	}
	return nil
}

func (d *cookieDict) List(context.Context) ([]store.Entry, error) {
	b := d.load()
	entries := make([]store.Entry, 0, len(b.Entries))
	for k, e := range b.Entries {
		entries = append(entries, store.Entry{Key: k, Value: e.V, Version: e.Ver, UpdatedAt: time.UnixMilli(e.At)})
	}
	slices.SortFunc(entries, func(a, b store.Entry) int { return cmp.Compare(a.Key, b.Key) })
	return entries, nil
}

func (d *cookieDict) Get(_ context.Context, key string) (store.Entry, error) {
	e, ok := d.load().Entries[key]
	if !ok {
		return store.Entry{}, store.ErrNotFound
	}
	return store.Entry{Key: key, Value: e.V, Version: e.Ver, UpdatedAt: time.UnixMilli(e.At)}, nil
}

func (d *cookieDict) Set(_ context.Context, key string, v json.RawMessage) (store.Entry, error) {
	b := d.load()
	b.Seq++
	e := browserEntry{V: v, Ver: b.Seq, At: time.Now().UnixMilli()}
	b.Entries[key] = e
	if err := d.save(b); err != nil {
		return store.Entry{}, err
	}
	return store.Entry{Key: key, Value: e.V, Version: e.Ver, UpdatedAt: time.UnixMilli(e.At)}, nil
}

func (d *cookieDict) Increment(ctx context.Context, key string) (store.Entry, error) {
	n := int64(0)
	if e, err := d.Get(ctx, key); err == nil {
		json.Unmarshal(e.Value, &n) // a non-integer counts as zero
	}
	return d.Set(ctx, key, json.RawMessage(fmt.Sprint(n+1)))
}

func (d *cookieDict) Delete(_ context.Context, key string) error {
	b := d.load()
	if _, ok := b.Entries[key]; !ok {
		return store.ErrNotFound
	}
	delete(b.Entries, key)
	return d.save(b)
}

func (d *cookieDict) Clear(context.Context) (int, error) {
	b := d.load()
	n := len(b.Entries)
	clear(b.Entries)
	return n, d.save(b)
}
