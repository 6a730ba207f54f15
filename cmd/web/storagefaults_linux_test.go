//go:build linux

package main

// The faults that need Linux: a tmpfs mounted to fill.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs of the given size (e.g. "2m") for the test;
// it needs root. Without it the test skips, unless FAULTS_REQUIRED=1 (CI).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		msg := fmt.Sprintf("mount a %s tmpfs (needs root): %v", size, err)
		if os.Getenv("FAULTS_REQUIRED") == "1" {
			t.Fatal(msg + " (FAULTS_REQUIRED=1)")
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fillDisk writes a file until the file system has no room left.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "2m")
	db := filepath.Join(dir, "storage.db")
	s := startChild(t, "-addr", "127.0.0.1:0", "-db", db, "-secret", testSecret, "-write-rate", "0")
	c := newJarClient()
	put(t, c, s.URL, "user/note", `"written before the disk filled"`)
	ask(t, c, "POST", s.URL+"/scopes/tab/visit", "", htmxForm) // the tab is known and counted once

	fill := filepath.Join(dir, "fill")
	fillDisk(t, fill)
	// SQLite reuses the room it already has; write until it has none. Each
	// write that is acknowledged meanwhile must stay.
	big := `"` + strings.Repeat("x", 3000) + `"`
	var acked []string
	var full answer
	for i := 0; ; i++ {
		key := fmt.Sprintf("user/k%d", i)
		full = ask(t, c, "PUT", s.URL+"/api/storage/"+key, big, jsonBody)
		if full.status != 200 {
			break
		}
		acked = append(acked, key)
		if i == 500 {
			t.Fatal("500 writes of 3 kB fit on a full 2 MiB disk")
		}
	}
	if full.status != 507 || full.body != `{"error":"Not saved: the server's disk is full"}`+"\n" {
		t.Fatalf("write on a full disk: %d %s, want 507 and the reason", full.status, full.body)
	}
	if a := ask(t, c, "POST", s.URL+"/scopes/user/entries", "key=fresh&value=%221%22", htmxForm); a.status != 507 || a.body != "Not saved: the server's disk is full" {
		t.Errorf("htmx write on a full disk: %d %q", a.status, a.body)
	}
	// Reads work: the page renders every value, and the tab's panel says
	// its visit was not counted, and why.
	if a := ask(t, c, "GET", s.URL+"/", "", nil); a.status != 200 || !strings.Contains(a.body, "written before the disk filled") {
		t.Errorf("page on a full disk: %d, want 200 with the stored note", a.status)
	}
	if a := ask(t, c, "POST", s.URL+"/scopes/tab/visit", "", htmxForm); a.status != 200 ||
		!strings.Contains(a.body, "This visit was not counted: the server&#39;s disk is full.") {
		t.Errorf("tab panel on a full disk: %d %s", a.status, a.body)
	}
	if a := ask(t, c, "GET", s.URL+"/healthz", "", nil); a.status != 200 || !strings.HasPrefix(a.body, "degraded: the disk is full") {
		t.Errorf("/healthz on a full disk: %d %q", a.status, a.body)
	}

	// Room again: writes succeed without a restart.
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	put(t, c, s.URL, "user/after", `"written after room was made"`)
	if a := ask(t, c, "GET", s.URL+"/healthz", "", nil); a.body != "ok\n" {
		t.Errorf("/healthz once a write succeeded again: %q", a.body)
	}
	for _, key := range append(acked, "user/note", "user/after") {
		if a := ask(t, c, "GET", s.URL+"/api/storage/"+key, "", nil); a.status != 200 {
			t.Errorf("acknowledged %s lost: %d", key, a.status)
		}
	}
	if a := ask(t, c, "GET", s.URL+"/api/storage/user/fresh", "", nil); a.status != 404 {
		t.Errorf("the refused write left something: %d %s", a.status, a.body)
	}
	s.Kill()
	checkIntegrity(t, db)
	t.Logf("%d writes acknowledged while the disk filled, 0 lost; refused with 507 in %v", len(acked), full.took)
}
