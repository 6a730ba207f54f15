package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/storagescopes/app/internal/proctest"
	"github.com/storagescopes/app/store"
)

const testSecret = "test-secret-test-secret-test-secret-0123456789"

// server is one run of the real program, in this process.
type server struct {
	URL  string
	log  *proctest.Log // what it printed
	stop func() error
}

// MustRun starts run on a free port with the given database and waits
// until /healthz answers.
func MustRun(tb testing.TB, db string, extra ...string) *server {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	args := append([]string{"-addr", "127.0.0.1:0", "-db", db, "-secret", testSecret}, extra...)
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, pw, pw)
		pw.Close()
	}()
	wait, stopWaiting := context.WithTimeout(context.Background(), 20*time.Second)
	defer stopWaiting()
	log := &proctest.Log{}
	url, err := proctest.Serving(wait, pr, log)
	if err != nil {
		cancel()
		tb.Fatalf("run did not serve: %v (run returned %v)", err, <-done)
	}
	var stopped bool
	s := &server{URL: url, log: log, stop: func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}}
	tb.Cleanup(func() { s.stop() })
	return s
}

func do(tb testing.TB, c *http.Client, method, url, body string, header map[string]string) (int, string) {
	tb.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func bootNumber(tb testing.TB, c *http.Client, url string) string {
	tb.Helper()
	_, body := do(tb, c, "GET", url+"/", "", nil)
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	return doc.Find(`[data-testid="boot-number"]`).Text()
}

func TestValuesAndCookieSurviveARestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "data", "storage.db")
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	tab := map[string]string{"X-Tab-ID": "6f1c2a9e-3b7d-4c1e-9a55-0d2b8f7e4c31", "Content-Type": "application/json"}

	s := MustRun(t, db)
	boot := bootNumber(t, c, s.URL)
	for _, scope := range []string{"general", "user", "tab", "browser"} {
		if status, body := do(t, c, "PUT", s.URL+"/api/storage/"+scope+"/note", `"kept in `+scope+`"`, tab); status >= 300 {
			t.Fatalf("PUT %s: %d %s", scope, status, body)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	s = MustRun(t, db)
	for _, scope := range []string{"general", "user", "tab", "browser"} {
		status, body := do(t, c, "GET", s.URL+"/api/storage/"+scope+"/note", "", tab)
		if status != 200 || !strings.Contains(body, `"kept in `+scope+`"`) {
			t.Errorf("%s after restart: %d %s", scope, status, body)
		}
	}
	if got, want := bootNumber(t, c, s.URL), boot; got == want || got == "" {
		t.Errorf("boot number after restart = %q, want more than %q", got, want)
	}
}

func TestFlags(t *testing.T) {
	env := map[string]string{"ADDR": "0.0.0.0:9", "TAB_TTL": "2d"}
	getenv := func(k string) string { return env[k] }
	c, err := parseFlags([]string{"-user-ttl", "36h"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "0.0.0.0:9" || c.tabTTL != 48*time.Hour || c.userTTL != 36*time.Hour || c.dbPath != "data/storage.db" || c.sync != store.SyncFull || c.liveDeflate {
		t.Errorf("config = %+v", c)
	}
	if c.https.on() || c.https.hsts != 365*24*time.Hour || len(c.https.proxies) != 0 {
		t.Errorf("HTTPS by default: %+v, want off, HSTS a year, no trusted proxy", c.https)
	}
	d, err := parseFlags([]string{"-domain", "app.example, www.example", "-trusted-proxies", "127.0.0.1,10.0.0.0/8", "-hsts", "0"},
		func(string) string { return "" }, io.Discard)
	if err != nil || d.addr != ":443" || d.https.httpAddr != ":80" || len(d.https.domains) != 2 || len(d.https.proxies) != 2 || d.https.hsts >= 0 {
		t.Errorf("-domain: %+v %v, want :443, :80, two names, two proxies, HSTS off", d, err)
	}
	for _, args := range [][]string{
		{"-secret", "short"},
		{"-secret", testSecret + ",short"},
		{"-tab-ttl", "0d"},
		{"-user-ttl", "soon"},
		{"-sync", "off"},
		{"-live-deflate", "yes"},
		{"-redis-wait", "1"}, // without -redis
		{"-redis", "redis://127.0.0.1:6379", "-redis-wait", "-1"},
		{"-domain", "app.example", "-tls-cert", "c.pem", "-tls-key", "k.pem"}, // one or the other
		{"-tls-cert", "c.pem"},                    // without its key
		{"-domain", "localhost"},                  // no dot: no ACME certificate
		{"-acme-directory", "https://ca.example"}, // without -domain
		{"-trusted-proxies", "10.0.0.0/33"},
		{"-hsts", "soon"},
		{"extra"},
	} {
		if _, err := parseFlags(args, getenv, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		} else if strings.Contains(err.Error(), "short") && args[0] == "-secret" {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}
