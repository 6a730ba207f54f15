package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/storagescopes/app/store"
)

// go test -bench . ./handlers: the handlers alone (no sockets), from 64
// goroutines at once as under load, each one browser with its cookie. What
// a request costs the server above reading and writing HTTP.

func BenchmarkPage(b *testing.B) {
	benchRequests(b, MustStart(b), pageRequest)
}

// BenchmarkPageFullScope is the page with the general scope at its limits
// (1,000 keys of 16 KiB): what it costs above BenchmarkPage is what the
// page pays for what the scope stores rather than for what it shows.
func BenchmarkPageFullScope(b *testing.B) {
	a := MustStart(b)
	fillScope(b, a, store.GeneralOwner, store.DefaultLimits.KeysPerOwner, store.DefaultLimits.ValueBytes)
	a.Server.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) // the scope read once, and cached
	benchRequests(b, a, pageRequest)
}

func pageRequest(cookie string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", cookie)
	return r
}

func BenchmarkFieldChange(b *testing.B) {
	var n atomic.Int64
	benchRequests(b, MustStart(b), func(cookie string) *http.Request {
		body := url.Values{"value": {"note " + strings.Repeat("x", int(n.Add(1)%8))}}.Encode()
		r := httptest.NewRequest("POST", "/scopes/user/fields/user_note", strings.NewReader(body))
		r.Header.Set("Cookie", cookie)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("HX-Request", "true")
		r.Header.Set("X-Tab-ID", benchTab) // each browser's one tab (its cookie tells them apart)
		return r
	})
}

// BenchmarkTabPanel is a page view's count: its tab's panel loading.
func BenchmarkTabPanel(b *testing.B) {
	benchRequests(b, MustStart(b), func(cookie string) *http.Request {
		r := httptest.NewRequest("POST", "/scopes/tab/visit", nil)
		r.Header.Set("Cookie", cookie)
		r.Header.Set("HX-Request", "true")
		r.Header.Set("X-Tab-ID", benchTab)
		return r
	})
}

// benchTab is the tab of every browser of the benchmarks.
var benchTab = newUUID()

func benchRequests(b *testing.B, a *app, request func(cookie string) *http.Request) {
	b.SetParallelism(32) // 64 goroutines on two cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine is one browser: its cookie from a first page load.
		first := httptest.NewRecorder()
		a.Server.ServeHTTP(first, httptest.NewRequest("GET", "/", nil))
		cookie := strings.Split(first.Header().Get("Set-Cookie"), ";")[0]
		for pb.Next() {
			w := httptest.NewRecorder()
			a.Server.ServeHTTP(w, request(cookie))
			if w.Code != http.StatusOK {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
}
