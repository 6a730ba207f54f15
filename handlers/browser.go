package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/storagescopes/app/store"
)

// cookieDict is the browser scope: a store.MemDict inside the signed and
// encrypted cookie. Every change re-issues the cookie on the response, so
// it must happen before the response body is written. A change that would
// make the cookie too large is refused and leaves the cookie as it was.
// Each change is also announced, for the browser's other pages.
type cookieDict struct {
	limits   store.Limits
	id       *identity
	origin   store.Origin
	w        http.ResponseWriter
	r        *http.Request
	announce func(ctx context.Context, c store.Change) error // store.Store.Announce
	log      *slog.Logger
}

// browserScope is the browser scope as the cookie holds it: shared with
// the remembered cookie (see cookieCodec), so it is never changed in place.
func browserScope(id *identity) *store.MemDict {
	if m, ok := id.session.Values[sessBrowser].(*store.MemDict); ok {
		return m
	}
	return &store.MemDict{}
}

// save stores m in the cookie; if the cookie would be too large it keeps
// the old content and says so. Then it announces the change, with the new
// contents whole.
func (d *cookieDict) save(ctx context.Context, m *store.MemDict, op store.Op, key string) error {
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
	contents, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode the browser scope: %w", err)
	}
	c := store.Change{Owner: store.Owner{Scope: store.Browser, UserID: d.id.UserID}, Op: op, Key: key,
		Value: contents, Version: m.Seq, At: time.Now().UnixMilli(), Origin: d.origin}
	if err := d.announce(ctx, c); err != nil {
		// The change is made (the cookie holds it); only the browser's
		// other pages miss it until they reload.
		d.log.Error("announce a browser change", "error", err, "user", d.id.UserID[:8])
	}
	return nil
}

func (d *cookieDict) List(context.Context) (store.Snapshot, error) {
	return browserScope(d.id).List(d.id.UserID), nil
}

func (d *cookieDict) View(_ context.Context, w store.Window) (store.View, error) {
	return browserScope(d.id).List(d.id.UserID).View(w), nil
}

func (d *cookieDict) Get(_ context.Context, key string) (store.Entry, error) {
	return browserScope(d.id).Get(d.id.UserID, key)
}

func (d *cookieDict) Set(ctx context.Context, key string, v json.RawMessage, ifVersion int64) (store.Entry, error) {
	m := browserScope(d.id).Clone()
	e, err := m.Set(key, v, ifVersion, d.origin, d.limits, time.Now())
	if err != nil {
		return e, err
	}
	return e, d.save(ctx, m, store.OpSet, key)
}

func (d *cookieDict) Increment(ctx context.Context, key string) (store.Entry, error) {
	m := browserScope(d.id).Clone()
	e, err := m.Increment(key, d.origin, d.limits, time.Now())
	if err != nil {
		return e, err
	}
	return e, d.save(ctx, m, store.OpSet, key)
}

func (d *cookieDict) Delete(ctx context.Context, key string, ifVersion int64) (int64, error) {
	m := browserScope(d.id).Clone()
	version, err := m.Delete(d.id.UserID, key, ifVersion)
	if err != nil {
		return 0, err
	}
	return version, d.save(ctx, m, store.OpDelete, key)
}

func (d *cookieDict) Clear(ctx context.Context) (int, int64, error) {
	m := browserScope(d.id).Clone()
	n, version := m.Clear()
	return n, version, d.save(ctx, m, store.OpClear, "")
}
