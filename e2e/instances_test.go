package e2e

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/storagescopes/app/store/redistest"
)

// The seed's walkthrough with tab 1 on instance A and tab 2 on instance B,
// sharing one Redis (same host, so the same cookie): it still holds, and
// live updates cross instances.
func TestBrowserTwoInstances(t *testing.T) {
	needChromium(t)
	redisURL := redistest.Start(t)
	a := startServer(t, "-redis", redisURL)
	b := startServer(t, "-redis", redisURL)
	br := newBrowser(t)
	tab1 := br.open(a.URL)
	tab1.typeText("general", "global_text", "from A")
	tab1.typeText("user", "user_note", "note via A")
	tab1.typeText("tab", "tab_data", "tab on A")

	tab2 := br.open(b.URL)
	// B hears of A's writes a moment after A answered them; the page
	// follows once it has.
	tab2.waitValue(field("general", "global_text"), "from A")
	tab2.waitValue(field("user", "user_note"), "note via A")
	tab2.checkValues("tab 2 on B", map[string]string{field("tab", "tab_data"): ""})
	tab2.clear("general", "global_text")
	tab2.typeText("general", "global_text", "from B")
	tab1.waitValue(field("general", "global_text"), "from B")
	tab2.clear("user", "user_note")
	tab2.typeText("user", "user_note", "note via B")
	tab1.waitValue(field("user", "user_note"), "note via B")
}

// failover is a reverse proxy, as a load balancer without sticky sessions:
// each request (a WebSocket upgrade included) goes to the first backend
// that accepts a connection.
func failover(t *testing.T, backends ...string) *httptest.Server {
	t.Helper()
	pick := func() *url.URL {
		for _, b := range backends {
			u, _ := url.Parse(b)
			if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
				c.Close()
				return u
			}
		}
		u, _ := url.Parse(backends[0])
		return u
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(pick())
		r.Out.Host = r.In.Host // the app checks the Origin against the Host it was asked for
	}}
	ts := httptest.NewServer(proxy)
	t.Cleanup(ts.Close)
	return ts
}

// An instance dies under an open tab: the tab reconnects through the load
// balancer to the other instance and shows current values, no reload.
func TestBrowserInstanceDies(t *testing.T) {
	needChromium(t)
	redisURL := redistest.Start(t)
	a := startServer(t, "-redis", redisURL)
	b := startServer(t, "-redis", redisURL)
	lb := failover(t, a.URL, b.URL)
	br := newBrowser(t)
	tab1 := br.open(lb.URL)
	tab1.typeText("user", "user_note", "kept in Redis")

	a.Kill()
	tab1.waitFor("the indicator to say reconnecting", `document.querySelector('#live').dataset.state === 'reconnecting'`)
	// While the tab is away, the value changes through the other instance.
	req, _ := http.NewRequest("PUT", b.URL+"/api/storage/general/global_text", strings.NewReader(`"changed on B"`))
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode >= 300 {
		t.Fatalf("PUT on B: %v %v", err, res)
	}
	tab1.waitFor("the indicator to say connected", `document.querySelector('#live').dataset.state === 'connected'`)
	tab1.waitValue(field("general", "global_text"), "changed on B")
	if got := tab1.value(field("user", "user_note")); got != "kept in Redis" {
		t.Errorf("note after the move = %q", got)
	}
	// And the tab keeps working on B.
	tab1.clear("user", "user_note")
	tab1.typeText("user", "user_note", "written after the move")
}
