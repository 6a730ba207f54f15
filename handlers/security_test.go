package handlers_test

// What a hostile or broken client meets: a tampered cookie, a cross-origin
// write, HTML in a value; the cookie's own flags.

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/storagescopes/app/handlers"
	"github.com/storagescopes/app/store"
)

func TestTamperedCookieGetsAFreshIdentity(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.Page("/")
	b.Type("user", "user_note", "secret note")

	u, _ := url.Parse(a.URL)
	cookies := b.client.Jar.Cookies(u)
	if len(cookies) != 1 {
		t.Fatalf("cookies = %v, want one", cookies)
	}
	// A cookie made under another secret (another deployment, or a key
	// retired from rotation).
	other := MustStart(t, func(c *handlers.Config) { c.Secrets = []string{"another-secret-another-secret-0123456789"} })
	ob := other.NewBrowser(t)
	ob.Page("/")
	ou, _ := url.Parse(other.URL)
	foreign := ob.client.Jar.Cookies(ou)[0].Value
	for name, value := range map[string]string{
		"flipped":     flip(cookies[0].Value),
		"truncated":   cookies[0].Value[:len(cookies[0].Value)/2],
		"garbage":     "not-a-cookie",
		"foreign key": foreign,
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", a.URL+"/", nil)
			req.AddCookie(&http.Cookie{Name: cookies[0].Name, Value: value})
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("status = %d, want 200", res.StatusCode)
			}
			doc, _ := goqueryFrom(res)
			if got := inputValue(t, doc, "Your Persistent Note"); got != "" {
				t.Errorf("tampered cookie reached note %q", got)
			}
			if len(res.Cookies()) != 1 {
				t.Errorf("no fresh cookie issued")
			}
		})
	}
	if got := inputValue(t, b.Page("/"), "Your Persistent Note"); got != "secret note" {
		t.Errorf("the real cookie lost its note: %q", got)
	}
}

func flip(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestCrossOriginWritesAreRefused(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	b.Page("/")
	for name, h := range map[string]map[string]string{
		"sec-fetch-site": {"Sec-Fetch-Site": "cross-site"},
		"origin":         {"Origin": "https://evil.example"},
	} {
		t.Run(name, func(t *testing.T) {
			h["Content-Type"] = "application/x-www-form-urlencoded"
			res := b.Do("POST", "/scopes/general/fields/global_text", strings.NewReader("value=pwned"), h)
			if res.Status != 403 {
				t.Errorf("form post: got %d, want 403", res.Status)
			}
			h["Content-Type"] = "application/json"
			res = b.Do("PUT", "/api/storage/general/global_text", strings.NewReader(`"pwned"`), h)
			if res.Status != 403 || !strings.Contains(res.Body, `"error"`) {
				t.Errorf("API put: got %d %s, want 403 with a JSON error", res.Status, res.Body)
			}
		})
	}
	if _, err := a.Store.Get(context.Background(), store.GeneralOwner, "global_text"); err != store.ErrNotFound {
		t.Errorf("a refused write changed global_text (err %v)", err)
	}
}

func TestHTMLValuesAreEscaped(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	payload := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	b.Type("general", "global_text", payload)
	b.API("PUT", "user/"+url.PathEscape("<b>key</b>"), `"<i>x</i>"`)
	res := b.Do("GET", "/", nil, map[string]string{"HX-Request": ""})
	if strings.Contains(res.Body, "<script>alert") || strings.Contains(res.Body, "<img src=x") || strings.Contains(res.Body, "<b>key</b>") {
		t.Errorf("page contains unescaped HTML from a value")
	}
	if got := inputValue(t, mustParse(t, res.Body), "Global Message"); got != payload {
		t.Errorf("Global Message = %q, want the payload as text", got)
	}
}

// The browser scope lives as long as the cookie: 400 days from the last
// page load, HttpOnly, SameSite=Lax, for the whole site.
func TestCookieLifetimeAndFlags(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)
	res := b.Do("GET", "/", nil, map[string]string{"HX-Request": ""})
	cookies := (&http.Response{Header: res.Header}).Cookies()
	if len(cookies) != 1 {
		t.Fatalf("Set-Cookie = %v, want one cookie", res.Header.Values("Set-Cookie"))
	}
	c := cookies[0]
	if c.MaxAge != 400*24*3600 || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
		t.Errorf("cookie = %+v, want Max-Age 400 days, HttpOnly, SameSite=Lax, Path=/, not Secure over plain HTTP", c)
	}
	// Every page view renews it (its tab's panel, which counts the view in
	// the browser scope, inside the cookie).
	res = b.Do("POST", "/scopes/tab/visit", nil, nil)
	if len(res.Header.Values("Set-Cookie")) != 1 {
		t.Errorf("a returning page view did not renew the cookie")
	}
}
