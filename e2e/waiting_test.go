package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The tests of waiting edits: a bound control's save that gets no answer
// waits in the page and is sent by itself once the server answers again,
// as the same conditional write.

// stored is a key's stored value and version, read through the API by the
// tab's page (its cookie, its tab id); "" and 0 when it is not set, or the
// server does not answer.
func (t *tab) stored(scope, key string) (value string, version int64) {
	t.b.t.Helper()
	got := eval[string](t, fmt.Sprintf(`(() => {
		try {
			const x = new XMLHttpRequest();
			x.open('GET', '/api/storage/%s/%s', false);
			x.setRequestHeader('X-Tab-ID', sessionStorage.getItem('tab-id'));
			x.send();
			return x.status === 200 ? x.responseText : '{}';
		} catch (e) { return '{}'; }
	})()`, scope, key))
	var e struct {
		Value   json.RawMessage
		Version int64
	}
	json.Unmarshal([]byte(got), &e)
	json.Unmarshal(e.Value, &value)
	return value, e.Version
}

// waitStored polls the API, as the tab, until scope/key holds want, and
// says how long it took.
func (t *tab) waitStored(scope, key, want string) time.Duration {
	t.b.t.Helper()
	start := time.Now()
	for deadline := start.Add(stepTimeout); ; time.Sleep(25 * time.Millisecond) {
		if got, _ := t.stored(scope, key); got == want {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			got, _ := t.stored(scope, key)
			t.b.t.Fatalf("%s/%s holds %q, want %q", scope, key, got, want)
		}
	}
}

// waiting waits until the field says its edit waits, and the live
// indicator counts it.
func (t *tab) waiting(scope, key string, edits int) {
	t.b.t.Helper()
	t.waitFor(scope+"/"+key+" to wait", fmt.Sprintf(
		`document.querySelector('[data-testid="status-%s-%s"]').dataset.state === 'pending' && document.querySelector('#live').dataset.pending === '%d'`,
		scope, key, edits))
}

// Killed with kill -9, edits typed meanwhile wait, and are stored by
// themselves once the server is back (within about a second: the page
// tries every second), with no keystroke; another tab then shows them. An
// inspector's write meanwhile says it got no answer, and is not queued.
func TestBrowserAnEditWaitsForTheServer(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	one := b.open(s.URL)
	one.typeText("user", "user_note", "saved")
	s.Kill()
	one.do(chromedp.SendKeys(chromedp.CSS(field("user", "user_note")), " offline"))
	one.do(chromedp.Click(chromedp.CSS(field("tab", "tab_color"))), chromedp.SetValue(chromedp.CSS(field("tab", "tab_color")), "blue"))
	one.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#input-tab-tab_color').dispatchEvent(new Event('change', {bubbles: true}))`))
	one.waiting("user", "user_note", 2)
	one.waiting("tab", "tab_color", 2)
	// The inspector's writes are not queued: one without an answer says so
	// and keeps what was typed.
	one.do(chromedp.SendKeys(chromedp.CSS("#set-key-general"), "k"), chromedp.SendKeys(chromedp.CSS("#set-value-general"), "1"),
		chromedp.Click(chromedp.CSS(`#panel-general .set-form button[type="submit"]`)))
	one.waitFor("the inspector to say nothing answered", `document.querySelector('[data-testid="inspector-status-general"]').textContent.includes('the server did not answer')`)
	one.checkValues("the inspector's form", map[string]string{"#set-key-general": "k", "#set-value-general": "1"})
	s.MustRestart(t)
	took := one.waitStored("user", "user_note", "saved offline")
	t.Logf("the waiting edit was stored %v after the server answered /healthz again", took)
	one.waitSaved("user", "user_note")
	one.waitSaved("tab", "tab_color")
	one.waitFor("nothing to wait", `document.querySelector('#live').dataset.pending === '0'`)
	two := b.open(s.URL)
	two.checkValues("another tab", map[string]string{field("user", "user_note"): "saved offline"})
}

// proxy is a TCP proxy between the browser and the server that the test
// cuts (every connection closed, new ones refused) and mends, the network
// between them going down and up while the server stays up.
type proxy struct {
	t      *testing.T
	to     string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	closed bool
}

func startProxy(t *testing.T, to string) *proxy {
	p := &proxy{t: t, to: to, conns: map[net.Conn]bool{}}
	p.listen("127.0.0.1:0")
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) URL() string { return "http://" + p.addr }

func (p *proxy) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr, p.closed = ln, ln.Addr().String(), false
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *proxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.to)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

// cut closes every connection and refuses new ones.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// mend listens again, on the same address.
func (p *proxy) mend() { p.listen(p.addr) }

// The network cut while the server stays up: an edit typed meanwhile waits,
// and is stored once the network is back, with no keystroke. A change
// another client made meanwhile makes it a conflict, never an overwrite:
// the field offers both, with the waiting text kept, until "Keep mine".
func TestBrowserAnEditWaitsForTheNetwork(t *testing.T) {
	s := startServer(t)
	p := startProxy(t, strings.TrimPrefix(s.URL, "http://"))
	b := newBrowser(t)
	one := b.open(p.URL())
	one.typeText("general", "global_text", "before")
	one.typeText("user", "user_note", "note")

	p.cut()
	one.do(chromedp.SendKeys(chromedp.CSS(field("user", "user_note")), " typed offline"))
	one.do(chromedp.SendKeys(chromedp.CSS(field("general", "global_text")), " mine"))
	one.waiting("user", "user_note", 2)
	one.waiting("general", "global_text", 2)
	req, _ := http.NewRequest(http.MethodPut, s.URL+"/api/storage/general/global_text", strings.NewReader(`"theirs"`))
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode >= 300 {
		t.Fatalf("PUT theirs: %v %v", res, err)
	}
	p.mend()
	one.waitStored("user", "user_note", "note typed offline")
	one.waitFor("the conflict", `document.querySelector('[data-testid="status-general-global_text"]').dataset.state === 'conflict'`)
	if got, _ := one.stored("general", "global_text"); got != "theirs" {
		t.Errorf("the conflicting edit was stored over theirs: %q", got)
	}
	one.checkValues("the field in conflict", map[string]string{field("general", "global_text"): "before mine"})
	one.do(chromedp.Click(chromedp.CSS(`#field-general-global_text [data-keep-mine]`)))
	one.waitStored("general", "global_text", "before mine")
}

// A reload while the server is down asks first ("leave this page?"); the
// page loaded again later puts the waiting edit back into its field and
// stores it.
func TestBrowserAWaitingEditSurvivesAReload(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t)
	one := b.open(s.URL)
	one.typeText("tab", "tab_data", "tab")
	var asked atomic.Int32
	if err := chromedp.Listen(one.ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			asked.Add(1)
			go chromedp.Call(one.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	one.do(chromedp.SendKeys(chromedp.CSS(field("tab", "tab_data")), " and more"))
	one.waiting("tab", "tab_data", 1)
	ctx, cancel := context.WithTimeout(one.ctx, 5*time.Second)
	chromedp.Run(ctx, chromedp.Reload()) // the server is down: the browser's own error page
	cancel()
	if asked.Load() == 0 {
		t.Error("reloading a page whose edit waits did not ask first")
	}
	s.MustRestart(t)
	one.do(chromedp.Navigate(s.URL))
	one.ready()
	one.waitStored("tab", "tab_data", "tab and more") // the tab's own scope: read through its page
	one.waitValue(field("tab", "tab_data"), "tab and more")
	one.waitSaved("tab", "tab_data")
}

// A save committed whose answer was lost (a proxy forwards it, waits for
// the answer, and resets the connection instead) is sent again, and is
// saved, not a conflict with itself, and stored once.
func TestBrowserASaveWhoseAnswerWasLostIsNotAConflict(t *testing.T) {
	s := startServer(t)
	target, _ := url.Parse(s.URL)
	var drop atomic.Bool
	rp := httputil.NewSingleHostReverseProxy(target)
	front := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/scopes/user/fields/") && drop.CompareAndSwap(true, false) {
			out := r.Clone(r.Context())
			out.URL.Scheme, out.URL.Host, out.Host, out.RequestURI = target.Scheme, target.Host, target.Host, ""
			res, err := http.DefaultTransport.RoundTrip(out)
			if err != nil || res.StatusCode != http.StatusOK {
				t.Errorf("the save the proxy forwarded: %v %v", res, err)
			} else {
				res.Body.Close() // committed and answered: the answer goes nowhere
			}
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go front.Serve(ln)
	t.Cleanup(func() { front.Close() })
	b := newBrowser(t)
	one := b.open("http://" + ln.Addr().String())
	one.typeText("user", "user_note", "first")
	_, before := one.stored("user", "user_note")
	drop.Store(true)
	one.do(chromedp.SendKeys(chromedp.CSS(field("user", "user_note")), " second"))
	one.waitSaved("user", "user_note")
	if drop.Load() {
		t.Fatal("the proxy dropped no answer")
	}
	value, after := one.stored("user", "user_note")
	if value != "first second" {
		t.Errorf("stored %q, want %q", value, "first second")
	}
	if after != before+1 {
		t.Errorf("the edit moved the key from version %d to %d: stored more than once", before, after)
	}
}
