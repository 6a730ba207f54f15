package scopes_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storagescopes/app/scopes"
	"github.com/storagescopes/app/store"
)

// newApp is an app on a fresh SQLite file, and its store.
func newApp(t *testing.T) (*scopes.App, *store.SQLite) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	app, err := scopes.New(scopes.Config{Store: st, Secrets: []string{"scopes-test-secret-scopes-test-0123456789"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close(); st.Close() })
	return app, st
}

// serve runs h under a fresh app's Identify and returns the answer.
func serve(t *testing.T, h http.HandlerFunc) *httptest.ResponseRecorder {
	t.Helper()
	app, _ := newApp(t)
	w := httptest.NewRecorder()
	app.Identify(h).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	return w
}

// The cookie holds about 4 KiB: the change that would not fit is
// ErrScopeFull, and the cookie keeps what it held.
func TestBrowserScopeIsFullAtTheCookiesSize(t *testing.T) {
	var kept, tried int
	var full error
	w := serve(t, func(_ http.ResponseWriter, r *http.Request) {
		d := scopes.Browser(r)
		for tried = 1; tried < 100; tried++ {
			if _, full = d.Set(r.Context(), "key"+strings.Repeat("k", tried%7)+string(rune('a'+tried%26))+string(rune('a'+tried/26)), strings.Repeat("v", 200)); full != nil {
				break
			}
		}
		keys, _ := store.Keys(r.Context(), d)
		kept = len(keys)
	})
	if !errors.Is(full, store.ErrScopeFull) {
		t.Fatalf("filling the cookie: %v, want ErrScopeFull", full)
	}
	if kept != tried-1 || kept < 5 || kept > 25 {
		t.Errorf("the cookie holds %d values of 200 bytes after %d tries, want every one before the refusal, 5 to 25 in all (the cookie is encrypted, then encoded twice)", kept, tried)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || len(cookies[0].Value)+len("__Host-scopes=") > 4096 {
		t.Errorf("the answer sets %d cookies, the first of %d bytes; want one a browser keeps under either name (4,096 bytes with its name)",
			len(cookies), len(cookies[0].Value))
	}
}

// A change of the browser scope once the answer has begun is an error,
// not a cookie lost on the way.
func TestBrowserScopeRefusesAChangeOnceTheAnswerBegan(t *testing.T) {
	var before, after error
	w := serve(t, func(w http.ResponseWriter, r *http.Request) {
		_, before = scopes.Browser(r).Set(r.Context(), "early", "kept")
		w.Write([]byte("the answer"))
		_, after = scopes.Browser(r).Set(r.Context(), "late", "lost")
	})
	if before != nil {
		t.Fatalf("a change before the answer: %v", before)
	}
	if !errors.Is(after, scopes.ErrAnswerBegun) {
		t.Errorf("a change after the answer began: %v, want ErrAnswerBegun", after)
	}
	if n := len(w.Result().Cookies()); n != 1 {
		t.Errorf("the answer sets %d cookies, want 1", n)
	}
}
