package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/storagescopes/app/store/redistest"
)

// liveSays waits until the live indicator is in state and reads text.
func (t *tab) liveSays(state, text string) {
	t.b.t.Helper()
	t.waitFor(fmt.Sprintf("the live indicator to read %q", text), fmt.Sprintf(
		`document.querySelector('#live')?.dataset.state === %q && document.querySelector('#live .live-text').textContent === %q`, state, text))
}

// statusSays waits until the status beside a bound field reads text.
func (t *tab) statusSays(scope, key, text string) {
	t.b.t.Helper()
	t.waitFor(fmt.Sprintf("%s/%s's status to read %q", scope, key, text), fmt.Sprintf(
		`document.querySelector('[data-testid="status-%s-%s"]')?.textContent.includes(%q)`, scope, key, text))
}

// waitThroughReloads polls a JS condition while the page may be reloading
// itself (a poll cut short by a navigation is tried again).
func (t *tab) waitThroughReloads(what, js string) {
	t.b.t.Helper()
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(t.ctx, time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.b.t.Fatalf("%s: waiting for %s: %v", t.name, what, err)
		}
	}
}

// Redis stops under open pages: they say so, a write says nothing was
// changed, a new page gets the error page, which reloads itself into the
// app once Redis is back, and the open page goes on where it was.
func TestBrowserRedisLost(t *testing.T) {
	needChromium(t)
	rs := redistest.StartServer(t)
	s := startServer(t, "-redis", rs.URL)
	br := newBrowser(t)
	tab1 := br.open(s.URL)
	tab1.typeText("general", "global_text", "before")

	rs.Stop()
	tab1.liveSays("unavailable", "Storage unavailable")
	tab1.do(chromedp.SendKeys(chromedp.CSS(field("general", "global_text")), " during"))
	tab1.statusSays("general", "global_text", "Storage is unavailable; nothing was changed")

	tab2 := br.navigate(s.URL + "/settings")
	tab2.waitFor("the error page", `document.querySelector('[data-testid="error-message"]')?.textContent === 'Storage is unavailable; nothing was changed'`)

	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	tab1.liveSays("connected", "Live")
	tab2.waitThroughReloads("the error page to reload itself into the app", `document.querySelector('#live')?.dataset.state === 'connected'`)
	tab2.ready()
	tab2.checkValues("the reloaded page", map[string]string{field("general", "global_text"): "before"})
	// The edit made while Redis was down was not saved; made again, it is.
	tab1.clear("general", "global_text")
	tab1.typeText("general", "global_text", "after")
	tab2.waitValue(field("general", "global_text"), "after")
}

// The disk fills under an open page: a write says it was not saved, a
// reload still shows every value and says the visit was not counted; once
// there is room, writing works again.
func TestBrowserDiskFull(t *testing.T) {
	needChromium(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		msg := fmt.Sprintf("mount a tmpfs (needs root): %v", err)
		if os.Getenv("FAULTS_REQUIRED") == "1" {
			t.Fatal(msg + " (FAULTS_REQUIRED=1)")
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	s := startServer(t, "-db", filepath.Join(dir, "storage.db"))
	br := newBrowser(t)
	tab1 := br.open(s.URL)
	tab1.typeText("user", "user_note", "kept")

	fill := filepath.Join(dir, "fill")
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	for chunk := make([]byte, 4096); ; {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	// SQLite reuses the room it has; long values use it up.
	for i := 0; i < 50 && !eval[bool](tab1, `document.querySelector('[data-testid="status-user-user_note"]').textContent.includes('disk is full')`); i++ {
		tab1.do(chromedp.SendKeys(chromedp.CSS(field("user", "user_note")), fmt.Sprintf(" %03d%0200d", i, 0)))
		tab1.waitFor("an answer", `['saved', 'error'].includes(document.querySelector('[data-testid="status-user-user_note"]').dataset.state)`)
	}
	tab1.statusSays("user", "user_note", "Not saved: the server's disk is full")
	tab1.liveSays("unavailable", "Disk full: not saving")

	tab1.do(chromedp.Reload())
	tab1.waitFor("the uncounted visit's note", `document.querySelector('[data-testid="visits-note-tab"]')?.textContent === "This visit was not counted: the server's disk is full."`)
	if got := tab1.value(field("user", "user_note")); len(got) < 4 || got[:4] != "kept" {
		t.Errorf("the note on a full disk reads %q, want what was saved", got)
	}

	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	tab1.clear("user", "user_note")
	tab1.typeText("user", "user_note", "room again")
	tab1.liveSays("connected", "Live")
}
