package handlers

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
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
	browser := &memKV{Seq: 2, Entries: map[string]memEntry{"visits": {V: []byte("2"), Ver: 2, At: 1795638033000}}}
	v := map[any]any{sessUserID: "0123456789abcdef0123456789abcdef", sessBrowser: browser}
	for b.Loop() {
		if _, err := c.codecs[0].Encode(cookieName, v); err != nil {
			b.Fatal(err)
		}
	}
}

// earlierSerializer writes the cookie's earlier form: every value a string,
// the browser scope as its JSON.
type earlierSerializer struct{}

func (earlierSerializer) Serialize(src any) ([]byte, error) {
	out := map[string]string{}
	for k, v := range src.(map[any]any) {
		out[k.(string)] = v.(string)
	}
	return json.Marshal(out)
}

func (earlierSerializer) Deserialize([]byte, any) error { return nil }

// A cookie made before the browser scope became an object of its own
// still reads, scope and all.
func TestEarlierCookieFormStillReads(t *testing.T) {
	earlier := mustCookieCodec(t, "secret-one").codecs[0].(*securecookie.SecureCookie)
	earlier.SetSerializer(earlierSerializer{})
	encoded, err := earlier.Encode(cookieName, map[any]any{
		sessUserID: "u1", sessBrowser: `{"s":2,"e":{"visits":{"v":2,"n":2,"t":1}}}`})
	if err != nil {
		t.Fatal(err)
	}
	values := map[any]any{}
	if err := mustCookieCodec(t, "secret-one").Decode(cookieName, encoded, &values); err != nil {
		t.Fatal(err)
	}
	m, _ := values[sessBrowser].(*memKV)
	if values[sessUserID] != "u1" || m == nil || string(m.Entries["visits"].V) != "2" {
		t.Errorf("decoded %v (browser %+v), want uid u1 and visits 2", values, m)
	}
}
