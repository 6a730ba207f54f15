package scopes

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/storagescopes/app/store"
)

// The cookie: its keys, its codec and what it holds. Who it says a request
// comes from is identity.go's.

// The one cookie this app sets: under the plain name over HTTP, and over
// HTTPS Secure and with the __Host- prefix, which a browser accepts only
// from a secure origin, for the host alone (no Domain), Path=/.
const (
	cookieName       = "scopes"
	secureCookieName = "__Host-scopes"
)

// cookieMaxAge is how long an unused cookie lives; every page load renews it.
const cookieMaxAge = 400 * 24 * time.Hour

// newCookieStore derives a signing and an encryption key from each secret.
// The first secret's keys encode; all of them decode, so a secret can be
// rotated by putting the new one first and keeping the old one after it.
func newCookieStore(secrets []string) (*sessions.CookieStore, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("no secret")
	}
	var pairs [][]byte
	for _, secret := range secrets {
		hashKey, blockKey, err := cookieKeys(secret)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, hashKey, blockKey)
	}
	cs := sessions.NewCookieStore(pairs...)
	cs.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   int(cookieMaxAge.Seconds()),
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	// The codecs check a cookie's age too (30 days unless told), and only
	// while they are securecookie's own, before they are wrapped.
	cs.MaxAge(cs.Options.MaxAge)
	// A browser keeps a cookie of at most 4096 bytes, name, "=" and value
	// together: one over it would be dropped, and a change lost unseen.
	for _, c := range cs.Codecs {
		c.(*securecookie.SecureCookie).MaxLength(4096 - len(secureCookieName) - 1).SetSerializer(cookieSerializer{})
	}
	cs.Codecs = []securecookie.Codec{&cookieCodec{codecs: cs.Codecs, seen: map[string]decodedCookie{}}}
	return cs, nil
}

// cookieKeys derives the signing and the encryption key of one secret.
func cookieKeys(secret string) (hashKey, blockKey []byte, err error) {
	if hashKey, err = hkdf.Key(sha256.New, []byte(secret), nil, "storage-scopes cookie signing", 64); err != nil {
		return nil, nil, err
	}
	blockKey, err = hkdf.Key(sha256.New, []byte(secret), nil, "storage-scopes cookie encryption", 32)
	return hashKey, blockKey, err
}

// cookieCodec encodes under the first secret's keys, decodes under any
// secret's, and remembers what it decoded lately: a browser sends the same
// cookie with every request until the cookie changes, and decoding it (two
// base64 passes, an HMAC, AES, JSON) is a good part of a small request.
// Only cookies that verified (or that it encoded itself) are remembered,
// each for a minute, so a cookie's age is still checked to the minute.
type cookieCodec struct {
	codecs []securecookie.Codec

	mu   sync.Mutex
	seen map[string]decodedCookie // by the cookie's value
}

type decodedCookie struct {
	name   string
	values map[any]any
	at     time.Time
	oldKey bool // verified under a secret other than the first
}

// Bounds of the decoded cookies kept in memory.
const (
	maxDecodedCookies = 10_000
	decodedCookieTTL  = time.Minute
)

func (c *cookieCodec) Encode(name string, value any) (string, error) {
	encoded, err := c.codecs[0].Encode(name, value)
	if values, ok := value.(map[any]any); ok && err == nil {
		c.remember(encoded, decodedCookie{name: name, values: maps.Clone(values)})
	}
	return encoded, err
}

func (c *cookieCodec) Decode(name, value string, dst any) error {
	values, ok := dst.(*map[any]any)
	if !ok {
		return fmt.Errorf("cookie: cannot decode into %T", dst)
	}
	if d, ok := c.recall(name, value); ok {
		if *values == nil {
			*values = make(map[any]any, len(d.values))
		}
		maps.Copy(*values, d.values)
		return nil
	}
	err := c.codecs[0].Decode(name, value, dst)
	oldKey := err != nil && len(c.codecs) > 1
	if oldKey {
		clear(*values)
		err = securecookie.DecodeMulti(name, value, dst, c.codecs[1:]...)
	}
	if err != nil {
		return err
	}
	c.remember(value, decodedCookie{name: name, values: maps.Clone(*values), oldKey: oldKey})
	return nil
}

// underOldKey reports whether a cookie that decoded was made under a secret
// other than the first, during a rotation.
func (c *cookieCodec) underOldKey(name, value string) bool {
	if d, ok := c.recall(name, value); ok {
		return d.oldKey
	}
	v := map[any]any{}
	return len(c.codecs) > 1 && c.codecs[0].Decode(name, value, &v) != nil
}

func (c *cookieCodec) recall(name, value string) (decodedCookie, bool) {
	c.mu.Lock()
	d, ok := c.seen[value]
	c.mu.Unlock()
	return d, ok && d.name == name && time.Since(d.at) < decodedCookieTTL
}

func (c *cookieCodec) remember(value string, d decodedCookie) {
	d.at = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) >= maxDecodedCookies {
		clear(c.seen) // simplest bound; the next requests decode again
	}
	c.seen[value] = d
}

// cookieSerializer keeps the session's values as one JSON object: the user
// id, and the browser scope as an object of its own, so that a remembered
// cookie (see cookieCodec) carries it decoded. (gob, the default, compiles
// its type descriptions on every decode.) A cookie of the earlier form, with
// the browser scope as a JSON string, still reads.
type cookieSerializer struct{}

// cookieContents is what the cookie holds. The browser scope is read raw
// (it may be the earlier string form) and written as the object itself.
type cookieContents struct {
	UserID  string          `json:"uid"`
	Browser json.RawMessage `json:"browser,omitempty"`
}

func (cookieSerializer) Serialize(src any) ([]byte, error) {
	values, ok := src.(map[any]any)
	if !ok {
		return nil, fmt.Errorf("cookie: cannot serialize %T", src)
	}
	var c struct {
		UserID  string         `json:"uid"`
		Browser *store.MemDict `json:"browser,omitempty"`
	}
	c.UserID, _ = values[sessUserID].(string)
	c.Browser, _ = values[sessBrowser].(*store.MemDict)
	// As typed: <, > and & would cost six bytes each of a 4 KiB cookie.
	return store.Marshal(c)
}

func (cookieSerializer) Deserialize(src []byte, dst any) error {
	values, ok := dst.(*map[any]any)
	if !ok {
		return fmt.Errorf("cookie: cannot deserialize into %T", dst)
	}
	var c cookieContents
	if err := json.Unmarshal(src, &c); err != nil {
		return err
	}
	if *values == nil {
		*values = make(map[any]any, 2)
	}
	(*values)[sessUserID] = c.UserID
	if len(c.Browser) > 0 {
		raw := []byte(c.Browser)
		var earlier string // the earlier form: the scope's JSON as a string
		if json.Unmarshal(raw, &earlier) == nil {
			raw = []byte(earlier)
		}
		m := &store.MemDict{}
		if err := json.Unmarshal(raw, m); err != nil {
			return err
		}
		(*values)[sessBrowser] = m
	}
	return nil
}
