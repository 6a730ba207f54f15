package handlers_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/storagescopes/app/handlers"
)

// The demo buttons: there when on, 404 when off; a cross-origin request is
// refused; one restart at a time.
func TestDemoControls(t *testing.T) {
	var restarts, crashes atomic.Int32
	on := MustStart(t, func(c *handlers.Config) {
		c.Demo = &handlers.Demo{Restart: func() { restarts.Add(1) }, Crash: func() { crashes.Add(1) }}
	})
	b := on.NewBrowser(t)
	doc := b.Page("/")
	for _, label := range []string{"Restart server", "Crash server"} {
		if doc.Find("footer button:contains('"+label+"')").Length() != 1 {
			t.Errorf("no %q button", label)
		}
	}
	if res := b.Do("POST", "/demo/restart", nil, map[string]string{"Sec-Fetch-Site": "cross-site"}); res.Status != 403 {
		t.Errorf("a cross-site restart: %d, want 403", res.Status)
	}
	res := b.Do("POST", "/demo/restart", nil, nil)
	if res.Status != 202 || !strings.Contains(res.Body, "Restarting") {
		t.Errorf("restart: %d %q, want 202", res.Status, res.Body)
	}
	for _, path := range []string{"/demo/restart", "/demo/crash"} {
		if res := b.Do("POST", path, nil, nil); res.Status != 409 || !strings.Contains(res.Body, "already under way") {
			t.Errorf("%s while restarting: %d %q, want 409", path, res.Status, res.Body)
		}
	}
	waitFor(t, "the restart to be asked for", func() bool { return restarts.Load() == 1 })
	if crashes.Load() != 0 {
		t.Errorf("a refused crash crashed")
	}

	off := MustStart(t) // no Demo: the buttons are off
	b = off.NewBrowser(t)
	if n := b.Page("/").Find("footer button").Length(); n != 0 {
		t.Errorf("%d demo buttons while off", n)
	}
	for _, path := range []string{"/demo/restart", "/demo/crash"} {
		if res := b.Do("POST", path, nil, nil); res.Status != 404 {
			t.Errorf("%s while off: %d, want 404", path, res.Status)
		}
	}
}
