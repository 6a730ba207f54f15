package main

import (
	"context"
	"database/sql"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storagescopes/app/store"
)

// Start-up faults: a clear message naming the problem, a non-zero exit,
// never a panic, and never a file changed.
func TestStartupFaults(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	garbageBytes := []byte(strings.Repeat("definitely not SQLite ", 50))
	os.WriteFile(garbage, garbageBytes, 0o644)
	aFile := filepath.Join(dir, "a-file")
	os.WriteFile(aFile, []byte("x"), 0o644)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"not SQLite", []string{"-db", garbage}, garbage},
		{"folder cannot be made", []string{"-db", filepath.Join(aFile, "storage.db")}, "database folder"},
		{"port in use", []string{"-addr", busy.Addr().String(), "-db", filepath.Join(dir, "ok.db")}, "another server"},
		{"metrics port in use", []string{"-addr", "127.0.0.1:0", "-metrics", busy.Addr().String(), "-secret", testSecret, "-db", filepath.Join(dir, "ok.db")}, "-metrics: listen on " + busy.Addr().String()},
		{"short secret", []string{"-secret", "too-short"}, "at least 32 are needed"},
		{"bad duration", []string{"-tab-ttl", "forever"}, "-tab-ttl"},
		{"bad limit", []string{"-max-keys", "0"}, "-max-keys"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := exitCode(c.args...)
			if code == 0 {
				t.Fatalf("exit code 0, want non-zero; output:\n%s", out)
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("output does not say %q:\n%s", c.want, out)
			}
			if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
				t.Errorf("the program panicked:\n%s", out)
			}
		})
	}
	if after, _ := os.ReadFile(garbage); string(after) != string(garbageBytes) {
		t.Errorf("the file that is not SQLite was changed")
	}
}

func TestSchemaNewerThanTheBinaryIsRefused(t *testing.T) {
	db := filepath.Join(t.TempDir(), "storage.db")
	st, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	markNewer(t, db)
	code, out := exitCode("-db", db, "-secret", testSecret)
	if code == 0 || !strings.Contains(out, "newer than this binary") {
		t.Errorf("exit %d, output:\n%s\nwant a refusal naming a newer schema", code, out)
	}
}

// get fetches url with client c and returns the status and body.
func fetch(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestGeneratedSecretIsKeptWarnedOnceAndNeverShown(t *testing.T) {
	db := filepath.Join(t.TempDir(), "storage.db")
	args := []string{"-addr", "127.0.0.1:0", "-db", db, "-log-level", "debug"}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}

	first := startChild(t, args...)
	put(t, c, first.URL, "user/note", `"kept with a generated secret"`)
	_, page := fetch(t, c, first.URL+"/")
	first.Terminate(5e9)
	second := startChild(t, args...)
	_, body := fetch(t, c, second.URL+"/api/storage/user/note")
	if !strings.Contains(body, "kept with a generated secret") {
		t.Errorf("the cookie did not survive a restart with the generated secret: %s", body)
	}
	second.Terminate(5e9)

	if n := strings.Count(first.Log(), "generated one"); n != 1 {
		t.Errorf("first start warned %d times, want once:\n%s", n, first.Log())
	}
	if strings.Contains(second.Log(), "generated one") {
		t.Errorf("second start warned again:\n%s", second.Log())
	}
	st, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	secret, _, _ := st.Secret(context.Background())
	for name, text := range map[string]string{"first log": first.Log(), "second log": second.Log(), "page": page} {
		if strings.Contains(text, secret) {
			t.Errorf("the secret appears in the %s", name)
		}
	}
}

func TestSecretRotation(t *testing.T) {
	db := filepath.Join(t.TempDir(), "storage.db")
	oldSecret := "old-secret-old-secret-old-secret-0123456789"
	newSecret := "new-secret-new-secret-new-secret-0123456789"
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	base := []string{"-addr", "127.0.0.1:0", "-db", db, "-log-level", "debug"}

	s := startChild(t, append(base, "-secret", oldSecret)...)
	put(t, c, s.URL, "user/note", `"made under the old key"`)
	s.Terminate(5e9)

	// New key first, old after: the old cookie is accepted and re-issued.
	s = startChild(t, append(base, "-secret", newSecret+","+oldSecret)...)
	if _, body := fetch(t, c, s.URL+"/api/storage/user/note"); !strings.Contains(body, "made under the old key") {
		t.Fatalf("old cookie not accepted during rotation: %s", body)
	}
	s.Terminate(5e9)

	// Only the new key: the re-issued cookie still works.
	s = startChild(t, append(base, "-secret", newSecret)...)
	if _, body := fetch(t, c, s.URL+"/api/storage/user/note"); !strings.Contains(body, "made under the old key") {
		t.Errorf("the cookie was not re-issued under the new key: %s", body)
	}
	s.Terminate(5e9)
	for _, secret := range []string{oldSecret, newSecret} {
		if strings.Contains(s.Log(), secret) {
			t.Errorf("a secret appears in the log")
		}
	}
}

func put(t *testing.T, c *http.Client, url, path, body string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", url+"/api/storage/"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode >= 300 {
		t.Fatalf("PUT %s: %d", path, res.StatusCode)
	}
}

// markNewer records a schema version this binary does not know, as a newer
// release would have.
func markNewer(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (999, 1)`); err != nil {
		t.Fatal(err)
	}
}

// The limit flags reach the server: a value over -max-value is 413, a key
// over -max-keys is 429, and neither is stored.
func TestLimitFlags(t *testing.T) {
	s := startChild(t, "-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "s.db"), "-secret", testSecret,
		"-max-value", "20", "-max-keys", "2")
	c := newJarClient()
	try := func(path, body string) int {
		req, _ := http.NewRequest("PUT", s.URL+"/api/storage/"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := try("user/big", `"`+strings.Repeat("x", 30)+`"`); got != 413 {
		t.Errorf("31-byte value with -max-value 20: %d, want 413", got)
	}
	try("user/a", `1`)
	try("user/b", `1`)
	if got := try("user/c", `1`); got != 429 {
		t.Errorf("third key with -max-keys 2: %d, want 429", got)
	}
	if _, body := fetch(t, c, s.URL+"/api/storage/user"); body != `{"a":1,"b":1}`+"\n" {
		t.Errorf("user scope = %s, want only a and b", body)
	}
}
