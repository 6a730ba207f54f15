package scopes

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/storagescopes/app/store"
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
	// In a bubble the clock is fake: a minute passes at once, and exactly.
	synctest.Test(t, func(t *testing.T) {
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
		time.Sleep(decodedCookieTTL - time.Second)
		if err := c.Decode(cookieName, encoded, &map[any]any{}); err != nil {
			t.Fatalf("a remembered cookie a second before the minute: %v", err)
		}
		time.Sleep(time.Second)
		if err := c.Decode(cookieName, encoded, &map[any]any{}); err == nil {
			t.Error("a cookie remembered for over a minute was not verified again")
		}
	})
}

func BenchmarkCookieEncode(b *testing.B) {
	cs, _ := newCookieStore([]string{"secret-one"})
	c := cs.Codecs[0].(*cookieCodec)
	browser := &store.MemDict{}
	browser.Increment("visits", store.Origin{Tab: 1}, store.DefaultLimits, time.UnixMilli(1795638033000))
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
	m, _ := values[sessBrowser].(*store.MemDict)
	var visits store.Entry
	if m != nil {
		visits, _ = m.Get("u1", "visits")
	}
	if values[sessUserID] != "u1" || string(visits.Value) != "2" {
		t.Errorf("decoded %v (browser %+v), want uid u1 and visits 2", values, m)
	}
}

// aged re-dates a cookie the codec made, as if it had been made age ago:
// securecookie's form is base64(date|value|mac), the MAC over name|date|value.
func aged(t *testing.T, secret, encoded string, age time.Duration) string {
	t.Helper()
	hashKey, _, err := cookieKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	b, err := base64.URLEncoding.DecodeString(encoded)
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.SplitN(b, []byte("|"), 3)[1]
	signed := strconv.FormatInt(time.Now().Add(-age).Unix(), 10) + "|" + string(value)
	mac := hmac.New(sha256.New, hashKey)
	mac.Write([]byte(cookieName + "|" + signed))
	return base64.URLEncoding.EncodeToString(append([]byte(signed+"|"), mac.Sum(nil)...))
}

// The cookie is set for 400 days, and the server accepts it that long.
func TestACookieIsAcceptedForItsWholeLifetime(t *testing.T) {
	const secret = "secret-one"
	encoded, err := mustCookieCodec(t, secret).Encode(cookieName, map[any]any{sessUserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		age  time.Duration
		want bool
	}{
		{31 * 24 * time.Hour, true},
		{cookieMaxAge - 24*time.Hour, true},
		{cookieMaxAge + 24*time.Hour, false},
	} {
		values := map[any]any{}
		err := mustCookieCodec(t, secret).Decode(cookieName, aged(t, secret, encoded, tc.age), &values)
		if got := err == nil && values[sessUserID] == "u1"; got != tc.want {
			t.Errorf("a cookie %d days old accepted = %v (%v), want %v", tc.age/(24*time.Hour), got, err, tc.want)
		}
	}
}
