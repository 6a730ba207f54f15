package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// go test -bench . ./handlers: the handlers alone (no sockets), from 64
// goroutines at once as under load, each one browser with its cookie. What
// a request costs the server above reading and writing HTTP.

func BenchmarkPage(b *testing.B) {
	benchRequests(b, func(cookie string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", cookie)
		return r
	})
}

func BenchmarkFieldChange(b *testing.B) {
	var n atomic.Int64
	benchRequests(b, func(cookie string) *http.Request {
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
	benchRequests(b, func(cookie string) *http.Request {
		r := httptest.NewRequest("POST", "/scopes/tab/visit", nil)
		r.Header.Set("Cookie", cookie)
		r.Header.Set("HX-Request", "true")
		r.Header.Set("X-Tab-ID", benchTab)
		return r
	})
}

// benchTab is the tab of every browser of the benchmarks.
var benchTab = newUUID()

func benchRequests(b *testing.B, request func(cookie string) *http.Request) {
	a := MustStart(b)
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
