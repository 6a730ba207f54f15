package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/storagescopes/app/internal/proctest"
	"github.com/storagescopes/app/internal/testcert"
)

// Certificates over ACME, end to end, against Let's Encrypt's test server
// (pebble, pinned in go.mod as a tool; it validates nothing here): the
// program with -domain app.localhost gets a certificate for it and serves
// the page with it, the cookie Secure.
func TestCertificatesOverACME(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.New() // for pebble's own HTTPS, which the program must trust
	if err != nil {
		t.Fatal(err)
	}
	cert, key, _, err := ca.Issue("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"ca.pem": ca.PEM(), "cert.pem": cert, "key.pem": key}
	acmePort, mgmtPort := proctest.FreePort(t), proctest.FreePort(t)
	conf, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress": fmt.Sprintf("127.0.0.1:%d", acmePort), "managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate": filepath.Join(dir, "cert.pem"), "privateKey": filepath.Join(dir, "key.pem"),
		"httpPort": proctest.FreePort(t), "tlsPort": proctest.FreePort(t), "ocspResponderURL": "", "externalAccountBindingRequired": false,
	}})
	files["pebble.json"] = conf
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "pebble"), "github.com/letsencrypt/pebble/v2/cmd/pebble")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build pebble: %v\n%s", err, out)
	}
	pebble := exec.Command(filepath.Join(dir, "pebble"), "-config", filepath.Join(dir, "pebble.json"))
	pebble.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	var pebbleLog proctest.Log
	pebble.Stdout, pebble.Stderr = &pebbleLog, &pebbleLog
	if err := pebble.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pebble.Process.Kill()
		pebble.Wait()
		if t.Failed() {
			t.Logf("pebble printed:\n%s", pebbleLog.String())
		}
	})
	trustPebble := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	directory := fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		res, err := trustPebble.Get(directory)
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble does not answer: %v", err)
		}
	}

	prog := proctest.Self()
	prog.Env = append(prog.Env, "SSL_CERT_FILE="+filepath.Join(dir, "ca.pem")) // the program trusts pebble's API
	httpAddr := fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t))
	s := proctest.MustStart(t, prog, "-domain", "app.localhost", "-acme-directory", directory,
		"-addr", "127.0.0.1:0", "-http-addr", httpAddr, "-db", filepath.Join(dir, "data", "s.db"), "-secret", testSecret)

	// Plain HTTP redirects to the same URL over HTTPS, on the app's port.
	plain, _ := http.NewRequest("GET", "http://"+httpAddr+"/settings?x=1", nil)
	plain.Host = "app.localhost"
	redirect, err := http.DefaultTransport.RoundTrip(plain)
	if err != nil {
		t.Fatal(err)
	}
	redirect.Body.Close()
	if got := redirect.Header.Get("Location"); redirect.StatusCode != http.StatusPermanentRedirect || got != s.URL+"/settings?x=1" {
		t.Errorf("plain HTTP: %d to %q, want 308 to %s/settings?x=1", redirect.StatusCode, got, s.URL)
	}

	// The certificate pebble issued chains to its root of the moment.
	res, err := trustPebble.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmtPort))
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(res.Body)
	res.Body.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's root: %s", rootPEM)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: proctest.DialLocalhost,
		TLSClientConfig: &tls.Config{RootCAs: roots}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/", nil)
	res, err = client.Do(req)
	if err != nil {
		t.Fatalf("the page over the ACME certificate: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS.PeerCertificates[0].DNSNames[0] != "app.localhost" {
		t.Errorf("the page: %d, certificate for %v; want 200 for app.localhost", res.StatusCode, res.TLS.PeerCertificates[0].DNSNames)
	}
	if c := res.Cookies(); len(c) == 0 || c[0].Name != "__Host-scopes" || !c[0].Secure {
		t.Errorf("cookies %v, want __Host-scopes, Secure", c)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "acme", "app.localhost")); err != nil {
		t.Errorf("the certificate is not kept beside the database: %v", err)
	}
}
