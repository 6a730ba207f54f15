package handlers

import (
	"fmt"
	"testing"
	"time"
)

func mustCookieCodec(t *testing.T, secrets ...string) *cookieCodec {
	t.Helper()
	cs, err := newCookieStore(secrets)
	if err != nil {
		t.Fatal(err)
	}
	return cs.Codecs[0].(*cookieCodec)
}

func TestRememberedCookiesAreBoundedAndExpire(t *testing.T) {
	c := mustCookieCodec(t, "secret-one")
	encoded, err := c.Encode(cookieName, map[any]any{sessUserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}

	// A remembered cookie decodes to what was encoded, and its copy is the
	// caller's own: changing it does not change the next decode.
	got := map[any]any{}
	if err := c.Decode(cookieName, encoded, &got); err != nil || got[sessUserID] != "u1" {
		t.Fatalf("decode = %v, %v; want uid u1", got, err)
	}
	got[sessUserID] = "changed"
	again := map[any]any{}
	if err := c.Decode(cookieName, encoded, &again); err != nil || again[sessUserID] != "u1" {
		t.Fatalf("second decode = %v, %v; want uid u1", again, err)
	}
	// Under another name it is not the same cookie.
	if err := c.Decode("other", encoded, &map[any]any{}); err == nil {
		t.Error("a cookie decoded under another name")
	}

	// The memory never holds more than its bound.
	for i := range maxDecodedCookies + 10 {
		if _, err := c.Encode(cookieName, map[any]any{sessUserID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.seen); n > maxDecodedCookies {
		t.Errorf("remembered %d cookies, want at most %d", n, maxDecodedCookies)
	}

	// After a minute a cookie is verified again: under keys that no longer
	// match, it no longer decodes.
	c.remember(encoded, decodedCookie{name: cookieName, values: map[any]any{sessUserID: "u1"}})
	c.codecs = mustCookieCodec(t, "secret-two").codecs
	if err := c.Decode(cookieName, encoded, &map[any]any{}); err != nil {
		t.Fatalf("a remembered cookie within the minute: %v", err)
	}
	d := c.seen[encoded]
	d.at = time.Now().Add(-decodedCookieTTL)
	c.seen[encoded] = d
	if err := c.Decode(cookieName, encoded, &map[any]any{}); err == nil {
		t.Error("a cookie remembered for over a minute was not verified again")
	}
}

func BenchmarkCookieEncode(b *testing.B) {
	cs, _ := newCookieStore([]string{"secret-one"})
	c := cs.Codecs[0].(*cookieCodec)
	v := map[any]any{sessUserID: "0123456789abcdef0123456789abcdef", sessBrowser: `{"s":2,"e":{"visits":{"v":2,"n":2,"t":1795638033000}}}`}
	for b.Loop() {
		if _, err := c.codecs[0].Encode(cookieName, v); err != nil {
			b.Fatal(err)
		}
	}
}
