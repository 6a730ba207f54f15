package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// liveBytes reads how many bytes the server wrote to its live connections
// (scopes_live_bytes_total, from -metrics).
func liveBytes(t *testing.T, s *server) float64 {
	t.Helper()
	m := regexp.MustCompile(`metrics at=(http://\S+)`).FindStringSubmatch(s.Log())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", s.Log())
	}
	res, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	line := regexp.MustCompile(`(?m)^scopes_live_bytes_total (\S+)$`).FindStringSubmatch(string(body))
	if line == nil {
		t.Fatalf("no scopes_live_bytes_total in the metrics")
	}
	n, _ := strconv.ParseFloat(line[1], 64)
	return n
}

// With -live-deflate on, Chromium takes WebSocket compression
// (permessage-deflate) and the pages work as they do without it; one key's
// change then costs fewer bytes on the wire. Off (the default), Chromium is
// not offered it. The figures are logged (go test -v -run Deflate ./e2e).
func TestBrowserLiveDeflate(t *testing.T) {
	perPush := map[string]float64{}
	for _, mode := range []string{"off", "on"} {
		s := startServer(t, "-live-deflate", mode, "-metrics", "127.0.0.1:0")
		b := newBrowser(t)
		one, two := b.open(s.URL), b.open(s.URL)
		// What the browser and the server agreed on, as a page sees it.
		one.do(chromedp.Evaluate[chromedp.Void](`window.liveExtensions = undefined;
			(() => { const ws = new WebSocket(location.origin.replace('http', 'ws') + '/live?tab=' + crypto.randomUUID() + '&client=' + crypto.randomUUID());
			ws.onopen = () => { window.liveExtensions = ws.extensions; ws.close(); }; })()`))
		one.waitFor("the test connection to open", `window.liveExtensions !== undefined`)
		ext := eval[string](one, `window.liveExtensions`)
		if got := strings.Contains(ext, "permessage-deflate"); got != (mode == "on") {
			t.Errorf("-live-deflate %s: Chromium took %q", mode, ext)
		}
		time.Sleep(time.Second) // the test connection's presence settles
		before := liveBytes(t, s)
		const pushes = 5
		for i := range pushes {
			putGeneral(t, s, "global_text", fmt.Sprintf(`"a change that both tabs see, number %d"`, i))
			for _, tb := range []*tab{one, two} {
				tb.waitValue(field("general", "global_text"), fmt.Sprintf("a change that both tabs see, number %d", i))
			}
		}
		perPush[mode] = (liveBytes(t, s) - before) / (2 * pushes)
		t.Logf("-live-deflate %s: Chromium took %q; one key's push: %.0f bytes on the wire", mode, ext, perPush[mode])
	}
	if perPush["on"] >= perPush["off"] {
		t.Errorf("a push with permessage-deflate is %.0f bytes, without %.0f", perPush["on"], perPush["off"])
	}
}
