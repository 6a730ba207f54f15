package handlers_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/storagescopes/app/static"
)

// Pages, the API's answers and the static files are compressed for a
// client that asks for it, and sent as they are to one that does not.
func TestAnswersAreCompressedForClientsThatAskForIt(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.Page("/")
	for i := range 40 {
		b.API("PUT", "general/key-"+strings.Repeat("k", i), `"a value of the general scope"`)
	}
	// A client of its own: Go's transport would otherwise ask for gzip
	// itself and hide the answer's encoding.
	raw := &http.Client{Jar: b.client.Jar, Transport: &http.Transport{DisableCompression: true}}
	get := func(path, acceptEncoding string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", a.URL+path, nil)
		if acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", acceptEncoding)
		}
		res, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
		}
		return res, body
	}
	gunzip := func(b []byte) string {
		t.Helper()
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("not gzip: %v", err)
		}
		plain, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(plain)
	}
	for _, tc := range []struct{ what, path, holds string }{
		{"a page", "/", `id="panel-general"`},
		{"the API's list", "/api/storage/general", `"key-kkk":`},
		{"a static file", static.Path("htmx.min.js"), "htmx"},
	} {
		res, body := get(tc.path, "gzip")
		if got := res.Header.Get("Content-Encoding"); got != "gzip" {
			t.Errorf("%s asked with gzip: Content-Encoding %q, want gzip", tc.what, got)
			continue
		}
		if !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("%s: Vary %q lacks Accept-Encoding (a cache would hand it to a client that did not ask)", tc.what, res.Header.Get("Vary"))
		}
		zipped := gunzip(body)
		if !strings.Contains(zipped, tc.holds) {
			t.Errorf("%s, gunzipped, lacks %s", tc.what, tc.holds)
		}
		res, plain := get(tc.path, "")
		if got := res.Header.Get("Content-Encoding"); got != "" || !strings.Contains(string(plain), tc.holds) {
			t.Errorf("%s asked without Accept-Encoding: Content-Encoding %q, body holds %s: %v", tc.what, got, tc.holds, strings.Contains(string(plain), tc.holds))
		}
		if len(body) >= len(plain) {
			t.Errorf("%s: %d bytes compressed, %d plain", tc.what, len(body), len(plain))
		}
	}
	// What Chromium asks: a page comes in one of the encodings it named.
	res, _ := get("/", "gzip, deflate, br, zstd")
	if got := res.Header.Get("Content-Encoding"); got != "gzip" && got != "zstd" {
		t.Errorf("a page asked as Chromium asks: Content-Encoding %q, want zstd or gzip", got)
	}
	// A static file is compressed once, not per request: every answer is
	// the same bytes.
	_, first := get(static.Path("app.js"), "gzip")
	_, second := get(static.Path("app.js"), "gzip")
	if !bytes.Equal(first, second) {
		t.Errorf("two answers for app.js differ")
	}
	// One key's change is smaller than a packet or two: sent as it is.
	h := map[string]string{"Accept-Encoding": "gzip", "Content-Type": "application/x-www-form-urlencoded"}
	if res := b.Do("POST", "/scopes/general/fields/global_text", strings.NewReader("value=hi"), h); res.Status != 200 || res.Header.Get("Content-Encoding") != "" {
		t.Errorf("one key's answer: %d, Content-Encoding %q; want 200 as it is", res.Status, res.Header.Get("Content-Encoding"))
	}
}
