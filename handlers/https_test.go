package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/storagescopes/app/handlers"
)

// cookieOf is the Set-Cookie of name in res, or nil.
func cookieOf(res *http.Response, name string) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Over HTTPS the identity cookie is Secure and named __Host-scopes: a cookie
// under the plain name (from before HTTPS) still reads, is issued again
// under the new name and expired under the old; where both arrive the
// __Host- one wins. Plain HTTP keeps the plain cookie. HSTS goes with HTTPS,
// not to a loopback host.
func TestTheCookieOverHTTPS(t *testing.T) {
	a := MustStart(t)
	secure := httptest.NewTLSServer(a.Server) // the same app, over TLS
	t.Cleanup(secure.Close)
	plain := a.NewBrowser(t)
	if res := plain.API("PUT", "user/note", `"mine"`); res.Status >= 300 {
		t.Fatalf("PUT: %d %s", res.Status, res.Body)
	}
	u, _ := url.Parse(a.URL)
	plainCookie := plain.client.Jar.Cookies(u)[0]
	if plainCookie.Name != "scopes" {
		t.Fatalf("over plain HTTP the cookie is %q, want scopes", plainCookie.Name)
	}
	get := func(host string, cookies ...*http.Cookie) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", secure.URL+"/api/storage/user/note", nil)
		if host != "" {
			req.Host = host
		}
		for _, c := range cookies {
			req.AddCookie(c)
		}
		res, err := secure.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := res.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return res, b.String()
	}

	res, body := get("", plainCookie)
	moved, expired := cookieOf(res, "__Host-scopes"), cookieOf(res, "scopes")
	switch {
	case !strings.Contains(body, `"mine"`):
		t.Errorf("the plain cookie over HTTPS: %s, want the same user's note", body)
	case moved == nil || !moved.Secure || moved.Path != "/" || moved.Domain != "" || !moved.HttpOnly:
		t.Errorf("the cookie moved to %+v, want __Host-scopes, Secure, HttpOnly, Path=/, no Domain", moved)
	case expired == nil || expired.MaxAge >= 0:
		t.Errorf("the plain cookie was not expired: %+v", expired)
	}
	if res.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent to a loopback host")
	}
	res, body = get("", moved)
	if !strings.Contains(body, `"mine"`) || res.Header.Get("Set-Cookie") != "" {
		t.Errorf("the secure cookie: %s, Set-Cookie %q; want the note, nothing set", body, res.Header.Get("Set-Cookie"))
	}
	other := a.NewBrowser(t)
	other.API("PUT", "user/note", `"theirs"`)
	if _, body := get("", moved, other.client.Jar.Cookies(u)[0]); !strings.Contains(body, `"mine"`) {
		t.Errorf("both cookies: %s, want the __Host- one's user", body)
	}
	res, _ = get("app.example", moved)
	if got := res.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("HSTS over HTTPS to app.example: %q, want max-age=31536000", got)
	}
	if got := plain.API("GET", "user/note", "").Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("HSTS over plain HTTP: %q", got)
	}
}

// X-Forwarded-Proto is believed from a trusted proxy alone: behind one the
// cookie is Secure and named __Host-scopes; from anyone else the header
// changes nothing.
func TestForwardedProtoFromTrustedProxiesOnly(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxies []netip.Prefix
		want    string
	}{
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, "__Host-scopes"},
		{"untrusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "scopes"},
		{"none", nil, "scopes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := MustStart(t, func(c *handlers.Config) { c.TrustedProxies = tc.proxies })
			req, _ := http.NewRequest("GET", a.URL+"/", nil)
			req.Header.Set("X-Forwarded-Proto", "https")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			c := cookieOf(res, tc.want)
			if c == nil || c.Secure != (tc.want == "__Host-scopes") {
				t.Errorf("cookies %v, want %s (Secure only under __Host-)", res.Cookies(), tc.want)
			}
		})
	}
}
