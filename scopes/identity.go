package scopes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/gorilla/sessions"

	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
)

// Identity is who a request comes from, established once by App.Identify:
// the user (one browser, from the cookie), the session that carries the
// browser scope, and the tab and page load its headers name.
type Identity struct {
	// Viewer is the user (one browser) and its tab's number in it, when
	// the request names a tab and the storage can number it (else 0).
	viewmodel.Viewer
	// Returning says the cookie came back; false for a first visit and for
	// a cookie that failed to decode (tampered, or under an unknown key).
	Returning bool
	// TabID and ClientID are the X-Tab-ID and X-Client-ID headers, checked;
	// empty when the request has none.
	TabID, ClientID string
	// API says the request came through the JSON API (a path under /api/),
	// which writes as "through the API".
	API bool

	app     *App
	session *sessions.Session
	// expirePlain says the cookie moved to the secure name: the answer
	// expires the plain one.
	expirePlain bool
	answer      *answer
	r           *http.Request
	// cookieMu keeps the cookie's browser scope one change at a time, for
	// a handler that changes it from several goroutines.
	cookieMu sync.Mutex
}

// Origin is who the request writes as: its browser, its tab (and the
// tab's number) and page load, through the API or a page.
func (id *Identity) Origin() store.Origin {
	return store.Origin{UserID: id.UserID, TabID: id.TabID, Tab: id.Tab, API: id.API, ClientID: id.ClientID}
}

// Who is who r comes from, or nil outside App.Identify.
func Who(r *http.Request) *Identity { return identityOf(r.Context()) }

func identityOf(ctx context.Context) *Identity { return infoFrom(ctx).identity }

// Session keys inside the cookie.
const (
	sessUserID  = "uid"
	sessBrowser = "browser" // the browser scope, a *memKV never changed in place
)

// Request headers that name the tab and the page load.
const (
	headerTabID    = "X-Tab-ID"
	headerClientID = "X-Client-ID"
	headerCopyFrom = "X-Tab-Copy-From"
)

// What the ids are called in errors.
const (
	tabIDName    = "X-Tab-ID header (the tab id)"
	clientIDName = "X-Client-ID header (the page-load id)"
)

// Identify is middleware that establishes who asks, once: it refuses
// writes from other origins, bounds the body, reads the cookie, or makes a
// new user for a request without a valid one (a cookie that does not
// decode means a new visitor, never an error), checks the tab and
// page-load ids the headers send (a malformed one is refused), copies a
// duplicated tab's rows (X-Tab-Copy-From) and numbers the tab. A tab that
// cannot be numbered while the storage has a fault stays unnamed: what can
// be read is still shown. Under it, General, User, Browser, Tab, Client and
// Who read the request's scopes. Wrapped twice, it does its work once.
func (s *App) Identify(next http.Handler) http.Handler {
	identified := s.refuseCrossOrigin(s.limitBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		aw := &answer{ResponseWriter: w}
		id, err := s.identify(aw, r)
		if err == nil && id.TabID != "" {
			err = s.numberTab(r, id)
		}
		if err != nil {
			s.serveError(w, r, err)
			return
		}
		if id.Returning {
			s.touchReturning(id) // see touch.go
		}
		info, r := s.requestInfo(r)
		info.identity = id
		id.r = r
		next.ServeHTTP(aw, r)
	})))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Who(r) != nil {
			next.ServeHTTP(w, r)
			return
		}
		identified.ServeHTTP(w, r)
	})
}

// numberTab numbers the request's tab, after copying the rows of the tab
// it duplicates (X-Tab-Copy-From): numbered first, a new tab over the cap
// could evict the original before it is copied. A tab that exists keeps
// what it has: a replayed copy never overwrites.
func (s *App) numberTab(r *http.Request, id *Identity) error {
	ctx := r.Context()
	if from := r.Header.Get(headerCopyFrom); from != "" {
		from, err := checkUUID("X-Tab-Copy-From header", from)
		if err != nil {
			return err
		}
		if err := s.store.CopyTab(ctx, id.UserID, from, id.TabID); err != nil && !errors.Is(err, store.ErrTabExists) && store.FaultOf(err) == nil {
			return err
		}
	}
	n, err := s.store.TabNumber(ctx, id.UserID, id.TabID)
	if store.FaultOf(err) != nil {
		return nil
	}
	id.Tab = n
	return err
}

// identify reads who r comes from. A new visitor's cookie is set on w at
// once, so that it keeps its identity from its first response on; a cookie
// under an old key is re-issued under the current one.
func (s *App) identify(w *answer, r *http.Request) (*Identity, error) {
	tab, err := optionalUUID(tabIDName, r.Header.Get(headerTabID))
	if err != nil {
		return nil, err
	}
	client, err := optionalUUID(clientIDName, r.Header.Get(headerClientID))
	if err != nil {
		return nil, err
	}
	sess, moved, err := s.readCookie(r)
	uid, _ := sess.Values[sessUserID].(string)
	id := &Identity{Viewer: viewmodel.Viewer{UserID: uid}, Returning: err == nil && !sess.IsNew && uid != "",
		TabID: tab, ClientID: client, API: isAPI(r), app: s, session: sess, answer: w, r: r, expirePlain: moved}
	if !id.Returning {
		if err != nil {
			s.Logger(r.Context()).Debug("cookie did not decode; new identity", "reason", err.Error())
		}
		clear(sess.Values)
		id.UserID = newUserID()
		sess.Values[sessUserID] = id.UserID
	}
	if !id.Returning || moved || s.underOldKey(r, sess.Name()) {
		if err := id.saveCookie(); err != nil {
			return nil, fmt.Errorf("save cookie: %w", err)
		}
	}
	return id, nil
}

// readCookie reads who r comes from out of its cookie. Over HTTPS the
// cookie is Secure and named __Host-scopes (sent over HTTPS only, for this
// host only); one under the plain name, from before HTTPS, still reads
// there, and moves (moved: it is to be saved under the new name, and the
// old one expired). Where both arrive, the __Host- one wins.
func (s *App) readCookie(r *http.Request) (sess *sessions.Session, moved bool, err error) {
	if !s.HTTPS(r) {
		sess, err = s.cookies.New(r, cookieName)
		return sess, false, err
	}
	_, secureErr := r.Cookie(secureCookieName)
	_, plainErr := r.Cookie(cookieName)
	if secureErr == nil || plainErr != nil {
		sess, err = s.cookies.New(r, secureCookieName)
		sess.Options.Secure = true
		return sess, plainErr == nil, err // both: the plain one is expired
	}
	plain, err := s.cookies.New(r, cookieName)
	sess = sessions.NewSession(s.cookies, secureCookieName) // securecookie signs the name: encoded again
	opts := *s.cookies.Options
	opts.Secure = true
	sess.Options, sess.Values, sess.IsNew = &opts, plain.Values, plain.IsNew
	return sess, true, err
}

// underOldKey reports whether the request's (valid) cookie name was made
// under a secret other than the first, during a rotation.
func (s *App) underOldKey(r *http.Request, name string) bool {
	codec := s.cookies.Codecs[0].(*cookieCodec)
	if len(codec.codecs) < 2 {
		return false // no rotation under way
	}
	c, err := r.Cookie(name)
	return err == nil && codec.underOldKey(name, c.Value)
}

// newUserID returns a random 128-bit id in hex.
func newUserID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// requestInfo is what the middleware learns about a request, under one
// context key: its number, for the logs, and once the cookie is read, who
// is asking. One key means one context (and one copy of the request) for
// both.
type requestInfo struct {
	id       uint64
	identity *Identity
}

type ctxKey int

const requestInfoKey ctxKey = 0

// requestInfo returns the request's info, adding it to the request first if
// numberRequests has not.
func (s *App) requestInfo(r *http.Request) (*requestInfo, *http.Request) {
	if info, ok := r.Context().Value(requestInfoKey).(*requestInfo); ok {
		return info, r
	}
	info := &requestInfo{id: s.requests.Add(1)}
	return info, r.WithContext(context.WithValue(r.Context(), requestInfoKey, info))
}

// infoFrom returns what is known of the request of ctx (nothing outside
// the middleware).
func infoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(requestInfoKey).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// saveCookie writes the cookie to the answer (before its body). Called
// again in the same request it replaces the earlier Set-Cookie.
func (id *Identity) saveCookie() error {
	h := id.answer.Header()
	others := slices.DeleteFunc(h.Values("Set-Cookie"), func(c string) bool {
		return strings.HasPrefix(c, cookieName+"=") || strings.HasPrefix(c, secureCookieName+"=")
	})
	h.Del("Set-Cookie")
	for _, c := range others { // the program's own cookies stay
		h.Add("Set-Cookie", c)
	}
	if id.expirePlain {
		http.SetCookie(id.answer, &http.Cookie{Name: cookieName, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	return id.session.Save(id.r, id.answer)
}

// optionalUUID is checkUUID for an id that may be absent.
func optionalUUID(what, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	return checkUUID(what, id)
}

// checkUUID accepts a canonical textual UUID (any version), as made by
// crypto.randomUUID in the browser, and returns it in lower case.
func checkUUID(what, id string) (string, error) {
	if id == "" {
		return "", badRequest(what + " is missing")
	}
	if len(id) != 36 {
		return "", badRequest(what + " is not a UUID")
	}
	for i, c := range []byte(id) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", badRequest(what + " is not a UUID")
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return "", badRequest(what + " is not a UUID")
			}
		}
	}
	return strings.ToLower(id), nil
}
