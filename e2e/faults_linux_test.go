//go:build linux

package e2e

// The browser's side of the faults that need Linux: a tmpfs mounted to
// fill.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
)

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
