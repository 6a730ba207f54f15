package handlers_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/storagescopes/app/handlers"
	"github.com/storagescopes/app/scopes"
	"github.com/storagescopes/app/store"
)

const testSecret = "test-secret-test-secret-test-secret-0123456789"

// app is one running server on a temp database.
type app struct {
	URL    string
	Store  *store.SQLite
	Server *handlers.Server
}

// MustStart runs the real handlers behind httptest on a fresh SQLite file.
// configure, if given, adjusts the config first.
func MustStart(tb testing.TB, configure ...func(*handlers.Config)) *app {
	tb.Helper()
	return MustStartWith(tb, store.Options{}, configure...)
}

// MustStartWith is MustStart with store options.
func MustStartWith(tb testing.TB, opts store.Options, configure ...func(*handlers.Config)) *app {
	tb.Helper()
	st, err := store.Open(context.Background(), filepath.Join(tb.TempDir(), "storage.db"), opts)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	cfg := handlers.Config{Config: scopes.Config{Store: st, Secrets: []string{testSecret}}}
	for _, f := range configure {
		f(&cfg)
	}
	srv, err := handlers.New(cfg)
	if err != nil {
		tb.Fatalf("new server: %v", err)
	}
	ts := httptest.NewServer(srv)
	tb.Cleanup(func() {
		srv.Close() // the live connections, which httptest does not track
		ts.Close()
		st.Close()
	})
	return &app{URL: ts.URL, Store: st, Server: srv}
}

// browser is one browser: a cookie jar, and a tab id for htmx requests.
type browser struct {
	tb     testing.TB
	app    *app
	client *http.Client
	tab    string
}

func (a *app) NewBrowser(tb testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{tb: tb, app: a, client: &http.Client{Jar: jar}, tab: newUUID()}
}

var uuidCounter atomic.Int64

// newUUID returns a distinct, valid tab id per call.
func newUUID() string {
	return fmt.Sprintf("%08x-0000-4000-8000-000000000000", uuidCounter.Add(1))
}

// response is what a test looks at.
type response struct {
	Status int
	Body   string
	Header http.Header
}

// Do sends a request as this browser's tab (htmx headers included unless
// the caller set them).
func (b *browser) Do(method, path string, body io.Reader, header map[string]string) response {
	b.tb.Helper()
	req, err := http.NewRequest(method, b.app.URL+path, body)
	if err != nil {
		b.tb.Fatal(err)
	}
	req.Header.Set("X-Tab-ID", b.tab)
	req.Header.Set("HX-Request", "true")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Body: string(data), Header: res.Header}
}

// Page loads a full page, as a browser's navigation does.
func (b *browser) Page(path string) *goquery.Document {
	b.tb.Helper()
	res := b.Do("GET", path, nil, map[string]string{"HX-Request": "", "X-Tab-ID": ""})
	if res.Status != 200 {
		b.tb.Fatalf("GET %s: status %d: %s", path, res.Status, res.Body)
	}
	return mustParse(b.tb, res.Body)
}

// View loads a page as a browser does: the page, then its tab's panel,
// which counts the view. It returns the panel's answer, which holds the
// counters after the view.
func (b *browser) View(path string) *goquery.Document {
	b.tb.Helper()
	b.Page(path)
	res := b.Do("POST", "/scopes/tab/visit", nil, map[string]string{"HX-Current-URL": b.app.URL + path})
	if res.Status != 200 {
		b.tb.Fatalf("tab visit: status %d: %s", res.Status, res.Body)
	}
	return mustParse(b.tb, res.Body)
}

// TabPanel loads the tab panel as the page's script does once it is up.
func (b *browser) TabPanel() *goquery.Document {
	b.tb.Helper()
	res := b.Do("POST", "/scopes/tab/visit", nil, nil)
	if res.Status != 200 {
		b.tb.Fatalf("tab visit: status %d: %s", res.Status, res.Body)
	}
	return mustParse(b.tb, res.Body)
}

// Type posts a bound field's new text, as its input does.
func (b *browser) Type(scope, key, text string) response {
	b.tb.Helper()
	return b.Form("POST", "/scopes/"+scope+"/fields/"+key, url.Values{"value": {text}})
}

// Form posts form values.
func (b *browser) Form(method, path string, v url.Values) response {
	b.tb.Helper()
	return b.Do(method, path, strings.NewReader(v.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// API calls the JSON API.
func (b *browser) API(method, path, body string) response {
	b.tb.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return b.Do(method, "/api/storage/"+path, r, map[string]string{"Content-Type": "application/json", "HX-Request": ""})
}

var partialTag = regexp.MustCompile(`<(/?)hx-partial`)

func mustParse(tb testing.TB, html string) *goquery.Document {
	tb.Helper()
	// As htmx reads an answer: each <hx-partial> is a <template>, whose
	// content may be table rows.
	html = partialTag.ReplaceAllString(html, "<${1}template")
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
	if err != nil {
		tb.Fatalf("parse HTML: %v", err)
	}
	return doc
}

// inputValue is the value of the input labelled label.
func inputValue(tb testing.TB, doc *goquery.Document, label string) string {
	tb.Helper()
	var id string
	doc.Find("label").EachWithBreak(func(_ int, l *goquery.Selection) bool {
		if strings.TrimSpace(l.Text()) == label {
			id, _ = l.Attr("for")
			return false
		}
		return true
	})
	if id == "" {
		tb.Fatalf("no label %q", label)
	}
	input := doc.Find("#" + id)
	if input.Length() != 1 {
		tb.Fatalf("label %q points at #%s, which is not there", label, id)
	}
	v, _ := input.Attr("value")
	return v
}

func testID(doc *goquery.Document, id string) string {
	return strings.TrimSpace(doc.Find(`[data-testid="` + id + `"]`).First().Text())
}

func goqueryFrom(res *http.Response) (*goquery.Document, error) {
	return goquery.NewDocumentFromReader(res.Body)
}

// waitFor polls cond until it holds, for a few seconds.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("waited 5s for %s", what)
		}
	}
}
