package scopes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/storagescopes/app/store"
)

// ErrAnswerBegun is a change of the browser scope once the answer has
// begun: the cookie that holds the scope can no longer be sent, so the
// change is refused rather than lost. Change the browser scope before
// writing the answer.
var ErrAnswerBegun = errors.New("scopes: the browser scope cannot change once the answer has begun (its cookie goes in the headers)")

// cookieKeeper keeps the browser scope: a store.MemDict inside the signed
// and encrypted cookie. Every change re-issues the cookie on the answer, so
// it must come before the answer's body. A change that would make the
// cookie too large is store.ErrScopeFull and leaves the cookie as it was.
// Each change is announced, for the browser's other pages.
type cookieKeeper struct{ id *Identity }

// browserScope is the browser scope as the cookie holds it: shared with
// the remembered cookie (see cookieCodec), so it is never changed in place.
func browserScope(id *Identity) *store.MemDict {
	if m, ok := id.session.Values[sessBrowser].(*store.MemDict); ok {
		return m
	}
	return &store.MemDict{}
}

func (k cookieKeeper) Read(f func(m *store.MemDict)) {
	k.id.cookieMu.Lock()
	defer k.id.cookieMu.Unlock()
	f(browserScope(k.id))
}

func (k cookieKeeper) Change(f func(m *store.MemDict, l store.Limits) (store.Change, error)) error {
	id := k.id
	id.cookieMu.Lock()
	defer id.cookieMu.Unlock()
	if id.answer.begun.Load() {
		return ErrAnswerBegun
	}
	m := browserScope(id).Clone()
	c, err := f(m, id.app.limits)
	if err != nil {
		return err
	}
	old := id.session.Values[sessBrowser]
	id.session.Values[sessBrowser] = m
	if err := id.saveCookie(); err != nil {
		id.session.Values[sessBrowser] = old
		if err := id.saveCookie(); err != nil {
			return fmt.Errorf("restore cookie: %w", err)
		}
		return fmt.Errorf("%w: the cookie holds about 4 KiB in all; delete some keys first", store.ErrScopeFull)
	}
	contents, err := store.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode the browser scope: %w", err)
	}
	// The change goes out with the contents whole: the browser's other
	// pages have no other way to read its cookie.
	c.Owner, c.Value = store.Owner{Scope: store.Browser, UserID: id.UserID}, contents
	if err := id.app.store.Announce(context.WithoutCancel(id.r.Context()), c); err != nil {
		// The change is made (the cookie holds it); only the browser's
		// other pages miss it until they reload.
		id.app.log.Error("announce a browser change", "error", err, "user", id.UserID[:8])
	}
	return nil
}

// answer is the response a request's Identify saw: it tells the browser
// scope whether the headers (and so the cookie) have gone.
type answer struct {
	http.ResponseWriter
	begun atomic.Bool
}

func (a *answer) WriteHeader(code int) {
	if code >= 200 {
		a.begun.Store(true)
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *answer) Write(b []byte) (int, error) {
	a.begun.Store(true)
	return a.ResponseWriter.Write(b)
}

// Flush sends what is written; it begins the answer.
func (a *answer) Flush() {
	a.begun.Store(true)
	http.NewResponseController(a.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection (a live
// connection hijacks it).
func (a *answer) Unwrap() http.ResponseWriter { return a.ResponseWriter }
