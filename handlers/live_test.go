package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/storagescopes/app/handlers"
)

// page is one open page's live connection, read in the background.
type page struct {
	tb     testing.TB
	client string
	conn   *websocket.Conn
	msgs   chan string
	closed chan error
}

// Live opens this browser tab's live connection as a page would, with a
// fresh client id, and reads it in the background.
func (b *browser) Live() *page {
	b.tb.Helper()
	p := b.dial()
	p.read()
	return p
}

// LiveShowing is Live for a page whose inspectors show what query says
// (q-{scope}, n-{scope}), as its script names them on reconnecting.
func (b *browser) LiveShowing(query string) *page {
	b.tb.Helper()
	p := b.dial(query)
	p.read()
	return p
}

func (b *browser) dial(query ...string) *page {
	b.tb.Helper()
	client := newUUID()
	u := strings.Replace(b.app.URL, "http", "ws", 1) + "/live?tab=" + b.tab + "&client=" + client
	for _, q := range query {
		u += "&" + q
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: b.client})
	if err != nil {
		b.tb.Fatalf("dial /live: %v", err)
	}
	conn.SetReadLimit(-1)
	p := &page{tb: b.tb, client: client, conn: conn, msgs: make(chan string, 1000), closed: make(chan error, 1)}
	b.tb.Cleanup(func() { conn.CloseNow() })
	return p
}

func (p *page) read() {
	go func() {
		for {
			_, data, err := p.conn.Read(context.Background())
			if err != nil {
				p.closed <- err
				return
			}
			p.msgs <- string(data)
		}
	}()
}

// header makes a request come from this page: it carries the page's client id.
func (p *page) header() map[string]string { return map[string]string{"X-Client-ID": p.client} }

// Next waits for the next message.
func (p *page) Next() string {
	p.tb.Helper()
	select {
	case m := <-p.msgs:
		return m
	case err := <-p.closed:
		p.tb.Fatalf("connection closed while waiting for a message: %v", err)
	case <-time.After(5 * time.Second):
		p.tb.Fatalf("no message within 5s")
	}
	return ""
}

// Joined waits until the page has its join: the general scope's part, then
// its own, which ends with the storage's health.
func (p *page) Joined() string {
	p.tb.Helper()
	return p.Expect(`hx-target="#storage-health"`)
}

// Expect waits for a message containing want.
func (p *page) Expect(want string) string {
	p.tb.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-p.msgs:
			if strings.Contains(m, want) {
				return m
			}
		case err := <-p.closed:
			p.tb.Fatalf("connection closed while waiting for %q: %v", want, err)
		case <-timeout:
			p.tb.Fatalf("no message containing %q within 5s", want)
		}
	}
}

// ExpectNone checks that no message containing unwanted arrives while a
// later marker write (which this page does see) comes through: messages
// arrive in order, so anything unwanted would have come first.
func (p *page) ExpectNoneBefore(unwanted, marker string) {
	p.tb.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-p.msgs:
			if strings.Contains(m, unwanted) {
				p.tb.Fatalf("got a message containing %q, want none", unwanted)
			}
			if strings.Contains(m, marker) {
				return
			}
		case <-timeout:
			p.tb.Fatalf("marker %q did not arrive within 5s", marker)
		}
	}
}

// typeAs posts a bound field's text from page p.
func (b *browser) typeAs(p *page, scope, key, text string) {
	b.tb.Helper()
	h := p.header()
	h["Content-Type"] = "application/x-www-form-urlencoded"
	res := b.Do("POST", "/scopes/"+scope+"/fields/"+key, strings.NewReader(url.Values{"value": {text}}.Encode()), h)
	if res.Status != 200 {
		b.tb.Fatalf("type in %s/%s: %d %s", scope, key, res.Status, res.Body)
	}
}

func TestLiveGeneralReachesEveryBrowser(t *testing.T) {
	a := MustStart(t)
	alice, bob := a.NewBrowser(t), a.NewBrowser(t)
	alice.Page("/")
	bob.Page("/")
	pa, pb := alice.Live(), bob.Live()
	pa.Joined() // the snapshot
	pb.Joined()

	writer := a.NewBrowser(t)
	writer.Type("general", "global_text", "hello from carol")
	for _, p := range []*page{pa, pb} {
		m := p.Expect("hello from carol")
		if !strings.Contains(m, `hx-target="#field-general-global_text"`) {
			t.Errorf("push does not target the Global Message field: %s", m)
		}
	}
}

func TestLiveUserReachesOnlyTheSameBrowser(t *testing.T) {
	a := MustStart(t)
	alice, bob := a.NewBrowser(t), a.NewBrowser(t)
	alice.Page("/")
	bob.Page("/")
	aliceTab2 := *alice
	aliceTab2.tab = newUUID()
	p1, p2, pb := alice.Live(), aliceTab2.Live(), bob.Live()
	for _, p := range []*page{p1, p2, pb} {
		p.Joined()
	}

	alice.typeAs(p1, "user", "username", "Alice")
	m := p2.Expect("Hello, Alice!") // the greeting follows the name live
	if !strings.Contains(m, `value="Alice"`) {
		t.Errorf("push lacks the name field's new value: %s", m)
	}
	// Bob sees the next general write but never Alice's name.
	a.NewBrowser(t).Type("general", "global_text", "marker")
	pb.ExpectNoneBefore("Alice", "marker")
	// Nor does the page that typed it get its own change back.
	p1.ExpectNoneBefore("Alice", "marker")
}

func TestLiveDarkModeAndBrowserScopeReachTheOtherTab(t *testing.T) {
	a := MustStart(t)
	b, other := a.NewBrowser(t), a.NewBrowser(t)
	b.Page("/")
	other.Page("/")
	tab2 := *b
	tab2.tab = newUUID()
	p1, p2, po := b.Live(), tab2.Live(), other.Live()
	p2.Joined()
	po.Joined()

	h := p1.header()
	h["Content-Type"] = "application/x-www-form-urlencoded"
	b.Do("POST", "/scopes/user/fields/dark_mode", strings.NewReader("value=true"), h)
	m := p2.Expect(`hx-target="#field-user-dark_mode"`)
	if !strings.Contains(m, `value="true"`) {
		t.Errorf("dark mode push does not check the box: %s", m)
	}
	b.typeAs(p1, "browser", "browser_note", "cookie note")
	p2.Expect("cookie note")
	// Another browser never sees it, and the page that typed it gets no echo.
	a.NewBrowser(t).Type("general", "global_text", "marker")
	po.ExpectNoneBefore("cookie note", "marker")
	p1.ExpectNoneBefore("cookie note", "marker")
}

func TestLiveTabWriteReachesNobodyElse(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.Page("/")
	tab2 := *b
	tab2.tab = newUUID()
	p1, p2 := b.Live(), tab2.Live()
	p1.Joined()
	p2.Joined()

	b.typeAs(p1, "tab", "tab_data", "tab one only")
	a.NewBrowser(t).Type("general", "global_text", "marker")
	p2.ExpectNoneBefore("tab one only", "marker")
	p1.ExpectNoneBefore("tab one only", "marker") // no echo either
}

func TestLiveSnapshotHoldsCurrentValues(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.Page("/")
	b.Type("general", "global_text", "general now")
	b.Type("user", "user_note", "note now")
	b.Type("browser", "browser_note", "browser now")
	b.Type("tab", "tab_data", "tab now")
	p := b.Live()
	// The join is two messages: the general scope's, which most pages
	// share, and the page's own.
	join := p.Next() + p.Next()
	for _, want := range []string{"general now", "note now", "browser now", "tab now", `hx-target="#field-client-client_note"`} {
		if !strings.Contains(join, want) {
			t.Errorf("snapshot lacks %q", want)
		}
	}
}

func TestLiveClientScopeVanishesAfterTheGrace(t *testing.T) {
	a := MustStart(t, func(c *handlers.Config) { c.ClientGrace = 100 * time.Millisecond })
	b := a.NewBrowser(t)
	b.Page("/")
	p := b.Live()
	p.Joined()
	b.typeAs(p, "client", "client_note", "per page load")
	panel := b.Do("POST", "/scopes/client/visit", nil, p.header())
	if got := inputValue(t, mustParse(t, panel.Body), "Client"); got != "per page load" {
		t.Fatalf("client value = %q while connected", got)
	}
	p.conn.Close(websocket.StatusGoingAway, "page closed")

	// Each look is an access that keeps the scope alive for another grace
	// period, so look less often than that.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		panel := b.Do("POST", "/scopes/client/visit", nil, p.header())
		if got := inputValue(t, mustParse(t, panel.Body), "Client"); got == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("client value still there 5s after its page closed")
		}
	}
}

func TestLiveClientNeedsItsID(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	res := b.Do("POST", "/scopes/client/fields/client_note", strings.NewReader("value=x"),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if res.Status != 400 || !strings.Contains(res.Body, "X-Client-ID") {
		t.Errorf("got %d %q, want 400 naming X-Client-ID", res.Status, res.Body)
	}
}

func TestLiveShutdownClosesConnectionsForAReconnect(t *testing.T) {
	a := MustStart(t)
	var pages []*page
	for range 5 {
		b := a.NewBrowser(t)
		b.Page("/")
		p := b.Live()
		p.Joined()
		pages = append(pages, p)
	}
	closed := make(chan struct{})
	go func() {
		a.Server.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with live connections open")
	}
	var wg sync.WaitGroup
	for _, p := range pages {
		wg.Go(func() {
			select {
			case err := <-p.closed:
				if got := websocket.CloseStatus(err); got != websocket.StatusServiceRestart {
					t.Errorf("close status = %v, want %v (a code that makes htmx reconnect)", got, websocket.StatusServiceRestart)
				}
			case <-time.After(5 * time.Second):
				t.Error("a page was not closed")
			}
		})
	}
	wg.Wait()
}

func TestLivePushesEscapeHTML(t *testing.T) {
	a := MustStart(t)
	viewer := a.NewBrowser(t)
	viewer.Page("/")
	p := viewer.Live()
	p.Joined()
	attacker := a.NewBrowser(t)
	attacker.API("PUT", "general/"+url.PathEscape(`<img src=x onerror=alert(1)>`), `"<script>alert(2)</script>"`)
	m := p.Expect("alert(2)")
	if strings.Contains(m, "<script>alert") || strings.Contains(m, "<img src=x") {
		t.Errorf("pushed fragment holds live HTML from a stored key or value:\n%s", m)
	}
}

func TestLiveRefusesAForeignOrigin(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.Page("/")
	u := strings.Replace(a.URL, "http", "ws", 1) + "/live?tab=" + b.tab + "&client=" + newUUID()
	_, res, err := websocket.Dial(context.Background(), u, &websocket.DialOptions{
		HTTPClient: b.client, HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || res == nil || res.StatusCode != 403 {
		t.Errorf("a foreign page opened a live connection: err %v, response %v", err, res)
	}
	// And the ids in the URL are checked like the headers.
	_, res, err = websocket.Dial(context.Background(), strings.Replace(a.URL, "http", "ws", 1)+"/live?tab=x&client=y",
		&websocket.DialOptions{HTTPClient: b.client})
	if err == nil || res == nil || res.StatusCode != 400 {
		t.Errorf("bad ids: err %v, response %v", err, res)
	}
}
