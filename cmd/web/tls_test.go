package main

import (
	"crypto/tls"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storagescopes/app/internal/testcert"
)

// The program serves HTTPS from certificate files: over HTTP/2, the cookie
// Secure and __Host-named, the live connection over wss://; renewed files
// are served from the next connection on, without a restart.
func TestServesHTTPSFromCertificateFiles(t *testing.T) {
	ca, err := testcert.New()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	issue := func() string {
		c, k, sn, err := ca.Issue("127.0.0.1", "app.example")
		if err != nil {
			t.Fatal(err)
		}
		// As a renewal does: the new files written beside, then moved in.
		for name, b := range map[string][]byte{certFile: c, keyFile: k} {
			if err := os.WriteFile(name+".new", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(name+".new", name); err != nil {
				t.Fatal(err)
			}
		}
		return sn.String()
	}
	first := issue()
	s := startChild(t, "-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "s.db"), "-secret", testSecret,
		"-tls-cert", certFile, "-tls-key", keyFile)
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("the program serves %s, want https://", s.URL)
	}
	jar, _ := cookiejar.New(nil)
	newClient := func(h2 bool) *http.Client {
		return &http.Client{Jar: jar, Transport: &http.Transport{ForceAttemptHTTP2: h2, DisableKeepAlives: !h2,
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	}
	res, err := newClient(true).Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Proto != "HTTP/2.0" {
		t.Errorf("the page over HTTPS: %d %s, want 200 over HTTP/2", res.StatusCode, res.Proto)
	}
	var secure *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "__Host-scopes" && c.Secure {
			secure = c
		}
	}
	if secure == nil {
		t.Errorf("cookies %v, want __Host-scopes, Secure", res.Cookies())
	}
	if got := res.TLS.PeerCertificates[0].SerialNumber.String(); got != first {
		t.Errorf("served certificate %s, want %s", got, first)
	}

	conn := mustLive(t, newClient(false), s.URL, 1) // wss://, HTTP/1.1's upgrade
	if join := mustJoin(t, conn); !strings.Contains(join, "storage-health") {
		t.Errorf("the join over wss: %.200s", join)
	}

	renewed := issue()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := newClient(false).Get(s.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.TLS.PeerCertificates[0].SerialNumber.String(); got == renewed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was never served")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
