package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/storagescopes/app/handlers"
	"github.com/storagescopes/app/internal/proctest"
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

// A page that reads, only more slowly than the writers write, is never
// dropped, and ends on the final version of every key: a push carries one
// key, a slow page gets only the newest of each, and one that falls too far
// behind is sent what it shows afresh.
func TestLiveSlowReaderIsNeverDropped(t *testing.T) {
	a := MustStart(t)
	slow := a.NewBrowser(t)
	slow.Page("/")
	p := slow.dial() // read below, slowly
	writer := a.NewBrowser(t)
	writer.Page("/")

	// Big values make every push large, so the socket's buffers fill and
	// pushes wait for the page.
	const keys, writes = 40, 300
	wrote := make(chan error, 1)
	go func() {
		for i := range writes {
			key := fmt.Sprintf("k%02d", i%keys)
			value := fmt.Sprintf(`"write %d %s"`, i, strings.Repeat("x", 15_000))
			if res := writer.API("PUT", "general/"+key, value); res.Status != 200 {
				wrote <- fmt.Errorf("PUT %s: %d %s", key, res.Status, res.Body)
				return
			}
		}
		wrote <- nil
	}()

	rowRE := regexp.MustCompile(`<tr data-key="(k\d\d)" data-version="(\d+)"`)
	seen := map[string]int64{} // the newest version of each key the page was shown
	var final map[string]int64
	for reads := 0; ; reads++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, data, err := p.conn.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("the slow page's connection ended after %d messages: %v", reads, err)
		}
		rows := rowRE.FindAllStringSubmatch(string(data), -1)
		// A push carries the one key that changed; only a join or a fresh
		// view (which swaps the rows in whole) carries more.
		if fresh := strings.Contains(string(data), `hx-swap="entries"`); !fresh && len(rows) > 1 {
			t.Fatalf("a push carries %d keys' rows (%d bytes), not the one that changed", len(rows), len(data))
		}
		for _, m := range rows {
			v, _ := strconv.ParseInt(m[2], 10, 64)
			seen[m[1]] = max(seen[m[1]], v)
		}
		if final == nil {
			select {
			case err := <-wrote:
				if err != nil {
					t.Fatal(err)
				}
				final = map[string]int64{}
				for i := range keys {
					key := fmt.Sprintf("k%02d", i)
					var e struct{ Version int64 }
					json.Unmarshal([]byte(writer.API("GET", "general/"+key, "").Body), &e)
					final[key] = e.Version
				}
			default:
			}
		}
		if final != nil && maps.EqualFunc(final, seen, func(want, got int64) bool { return got >= want }) {
			if !maps.Equal(final, seen) {
				t.Errorf("the page was shown versions that were never written: %v, want %v", seen, final)
			}
			return
		}
		time.Sleep(20 * time.Millisecond) // a page slower than the writers
	}
}

// A page that reads nothing at all is dropped once a push has waited on it
// for the stall limit, and the writers and the other pages never wait for
// it.
func TestLiveStuckPageIsDroppedWithoutBlockingWriters(t *testing.T) {
	log := &proctest.Log{}
	a := MustStart(t, func(c *handlers.Config) {
		c.LiveStall = 500 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(log, nil))
	})
	slow := a.NewBrowser(t)
	slow.Page("/")
	stuck := slow.dial() // never reads
	fast := a.NewBrowser(t)
	fast.Page("/")
	pf := fast.Live()
	pf.Joined()

	// Big values of a bound control make every push large (a page is sent
	// a bound control's whole value, but only a row's start), so the stuck
	// page's socket buffers fill and a push waits on it. Writes go on until
	// it is dropped.
	big := strings.Repeat("x", 15_000)
	writer := a.NewBrowser(t)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; !strings.Contains(log.String(), "dropped a page that stopped reading"); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the stuck page was not dropped after %d writes; log:\n%s", i, log)
		}
		res := writer.API("PUT", "general/global_text", fmt.Sprintf(`"%d%s"`, i, big))
		if res.Status != 200 {
			t.Fatalf("write %d: %d %s", i, res.Status, res.Body)
		}
	}
	writer.Type("general", "global_text", "final")
	// The reading page was never dropped, and ends on the current state.
	pf.Expect(`value="final"`)

	// The stuck page finds its connection closed once it reads what was
	// buffered.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := stuck.conn.Read(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("the stuck page's connection stayed open")
			}
			break
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

// Two tabs of two browsers write one general key at the same time; when
// the writes stop, each tab shows the last committed version.
func TestLiveConcurrentWritersConverge(t *testing.T) {
	a := MustStart(t)
	type tab struct {
		b    *browser
		p    *page
		mu   sync.Mutex
		seen map[int64]string // versions of global_text this tab was shown
	}
	var tabs []*tab
	for range 2 {
		b := a.NewBrowser(t)
		b.Page("/")
		tb := &tab{b: b, p: b.Live(), seen: map[int64]string{}}
		tb.p.Joined()
		tabs = append(tabs, tb)
	}
	fieldRE := regexp.MustCompile(`hx-target="#field-general-global_text" hx-swap="field"><data value="([^"]*)" data-v="(\d+)"`)
	record := func(tb *tab, html string) {
		if m := fieldRE.FindStringSubmatch(html); m != nil {
			v, _ := strconv.ParseInt(m[2], 10, 64)
			tb.mu.Lock()
			tb.seen[v] = m[1]
			tb.mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for i, tb := range tabs {
		wg.Go(func() {
			for j := range 50 {
				h := tb.p.header()
				h["Content-Type"] = "application/x-www-form-urlencoded"
				res := tb.b.Do("POST", "/scopes/general/entries", strings.NewReader(url.Values{
					"key": {"global_text"}, "value": {fmt.Sprintf(`"tab %d write %d"`, i, j)}}.Encode()), h)
				record(tb, res.Body)
			}
		})
	}
	wg.Wait()
	final := a.NewBrowser(t).API("GET", "general/global_text", "")
	var want struct {
		Value   string
		Version int64
	}
	json.Unmarshal([]byte(final.Body), &want)
	for i, tb := range tabs {
		// Read pushes until this tab has been shown the final version.
		deadline := time.After(5 * time.Second)
		for {
			tb.mu.Lock()
			latest := int64(0)
			for v := range tb.seen {
				latest = max(latest, v)
			}
			got := tb.seen[latest]
			tb.mu.Unlock()
			if latest >= want.Version {
				if latest != want.Version || got != want.Value {
					t.Errorf("tab %d ended on v%d %q, want v%d %q", i, latest, got, want.Version, want.Value)
				}
				break
			}
			select {
			case m := <-tb.p.msgs:
				record(tb, m)
			case <-deadline:
				t.Fatalf("tab %d never saw v%d (latest v%d)", i, want.Version, latest)
			}
		}
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
