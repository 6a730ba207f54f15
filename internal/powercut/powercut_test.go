//go:build linux

package powercut

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// mmapChildEnv makes this test binary write "mapped" at the start of a
// file through a shared writable mapping, and exit.
const mmapChildEnv = "POWERCUT_MMAP_WRITE"

func TestMain(m *testing.M) {
	if name := os.Getenv(mmapChildEnv); name != "" {
		if err := writeMapped(name, "mapped"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func writeMapped(name, data string) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, len(data), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return err
	}
	copy(m, data)
	return syscall.Munmap(m)
}

// mustWrite writes data at off in the file name of the mount, and fsyncs it
// if sync is set.
func mustWrite(t *testing.T, name string, data string, off int64, sync bool) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(data), off); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

// mustRead returns the file's content, in the mount or the backing folder.
func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustCut cuts and returns what was thrown away.
func mustCut(t *testing.T, fsys *FS) CutStats {
	t.Helper()
	stats, err := fsys.Cut()
	if err != nil {
		t.Fatal(err)
	}
	return stats
}

func TestCut(t *testing.T) {
	backing, mnt := t.TempDir(), t.TempDir()
	fsys := MustMount(t, backing, mnt)
	name := filepath.Join(mnt, "data")

	// Written and fsynced: it survives.
	mustWrite(t, name, "durable", 0, true)
	if stats := mustCut(t, fsys); stats != (CutStats{}) {
		t.Errorf("a cut after an fsync threw away %+v, want nothing", stats)
	}
	if got := mustRead(t, name); got != "durable" {
		t.Fatalf("after a cut, got %q, want %q", got, "durable")
	}

	// A later write that overwrites part of it and grows it, not synced:
	// gone, the old bytes and the old size are back.
	mustWrite(t, name, "VOLATILE-AND-LONGER", 3, false)
	if got := mustRead(t, name); got != "durVOLATILE-AND-LONGER" {
		t.Fatalf("before the cut, got %q", got)
	}
	stats := mustCut(t, fsys)
	if want := (CutStats{Files: 1, Writes: 1, Bytes: int64(len("VOLATILE-AND-LONGER"))}); stats != want {
		t.Errorf("cut threw away %+v, want %+v", stats, want)
	}
	if got := mustRead(t, name); got != "durable" {
		t.Errorf("after a cut, got %q, want %q", got, "durable")
	}
	if got := mustRead(t, filepath.Join(backing, "data")); got != "durable" {
		t.Errorf("backing file after a cut holds %q, want %q", got, "durable")
	}

	// A truncate not synced is undone: the cut tail comes back.
	if err := os.Truncate(name, 3); err != nil {
		t.Fatal(err)
	}
	stats = mustCut(t, fsys)
	if want := (CutStats{Files: 1, Truncates: 1, Bytes: 4}); stats != want {
		t.Errorf("cut threw away %+v, want %+v", stats, want)
	}
	if got := mustRead(t, name); got != "durable" {
		t.Errorf("after a cut, got %q, want %q", got, "durable")
	}

	// Writes, truncates and an fsync in between: only what came after the
	// fsync is undone, newest first.
	mustWrite(t, name, "DUR", 0, false)
	if err := os.Truncate(name, 2); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, name, "abc", 2, true) // "DUabc", durable
	mustWrite(t, name, "XYZ", 4, false)
	if err := os.Truncate(name, 1); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, name, "Q", 8, false) // a hole, then Q
	mustCut(t, fsys)
	if got := mustRead(t, name); got != "DUabc" {
		t.Errorf("after a cut, got %q, want %q (the state at the fsync)", got, "DUabc")
	}

	// Rewritten whole (open with O_TRUNC), not synced: the old file is back.
	if err := os.WriteFile(name, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCut(t, fsys)
	if got := mustRead(t, name); got != "DUabc" {
		t.Errorf("after a cut, got %q, want %q", got, "DUabc")
	}

	// A file created and never synced keeps its name (metadata is durable)
	// but loses its data.
	fresh := filepath.Join(mnt, "fresh")
	mustWrite(t, fresh, "lost", 0, false)
	mustCut(t, fsys)
	if got := mustRead(t, fresh); got != "" {
		t.Errorf("unsynced new file after a cut holds %q, want it empty", got)
	}
}

// TestCutSharedMmap: a write through a shared writable mapping (how SQLite
// writes its -shm file) reaches the file, and without an fsync a cut drops
// it.
func TestCutSharedMmap(t *testing.T) {
	backing, mnt := t.TempDir(), t.TempDir()
	fsys := MustMount(t, backing, mnt)
	name := filepath.Join(mnt, "shm")
	mustWrite(t, name, "0123456789", 0, true)

	// Another process writes through the mapping: in this one, a page
	// fault served by this process's own file system can deadlock with a
	// stop of the garbage collector.
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), mmapChildEnv+"="+name)
	if out, err := child.CombinedOutput(); err != nil {
		t.Fatalf("shared writable mmap on the mount: %v %s", err, out)
	}
	if got := mustRead(t, name); got != "mapped6789" {
		t.Fatalf("read after writing through the mapping: got %q, want %q", got, "mapped6789")
	}
	stats := mustCut(t, fsys)
	if stats.Writes == 0 {
		t.Errorf("cut threw away %+v, want the mapped write", stats)
	}
	if got := mustRead(t, name); got != "0123456789" {
		t.Errorf("after a cut, got %q, want %q", got, "0123456789")
	}
}
