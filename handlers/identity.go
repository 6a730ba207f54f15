package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/sessions"

	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
)

// identity is who a request comes from, resolved once by loadIdentity: the
// user (one browser, from the cookie), the session that carries the browser
// scope, and the tab and page load its headers name.
type identity struct {
	// Viewer is the user (one browser) and its tab's number in it, when
	// the request names a tab and the storage can number it (else 0).
	viewmodel.Viewer
	// Returning says the cookie came back; false for a first visit and for
	// a cookie that failed to decode (tampered, or under an unknown key).
	Returning bool
	// TabID and ClientID are the X-Tab-ID and X-Client-ID headers, checked;
	// empty when the request has none.
	TabID, ClientID string
	// API says the request came through the JSON API, which writes as
	// "through the API".
	API     bool
	session *sessions.Session
}

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

// loadIdentity is middleware that reads the cookie, or makes a new user for
// a request without a valid one (a cookie that does not decode means a new
// visitor, never an error), checks the tab and page-load ids the headers
// send (a malformed one is refused) and numbers the tab. A tab that cannot
// be numbered while the storage has a fault stays unnamed: what can be
// read is still shown.
func (s *Server) loadIdentity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.identify(w, r)
		// A duplicated tab's first request copies the original's rows
		// first (handleVisit): numbered now, a new tab over the cap could
		// evict the original before it is copied.
		if err == nil && id.TabID != "" && r.Header.Get(headerCopyFrom) == "" {
			id.Tab, err = s.store.TabNumber(r.Context(), id.UserID, id.TabID)
			if store.FaultOf(err) != nil {
				err = nil
			}
		}
		if err != nil {
			s.serveError(w, r, err)
			return
		}
		// The cookie came back: keep the user past the one-shot grace, and
		// the user and its tab from expiring while they are in use. The
		// request does not wait for that (a locked database would hold it
		// up), and while the storage has a fault it is not even tried.
		if id.Returning && s.hub.HealthNow() == nil {
			ctx := context.WithoutCancel(r.Context())
			go func() {
				if err := s.store.Touch(ctx, id.UserID, id.TabID, true); err != nil && store.FaultOf(err) == nil && !errors.Is(err, store.ErrClosed) {
					s.logger(ctx).Error("touch", "error", err)
				}
			}()
		}
		info, r := s.requestInfo(r)
		info.identity = id
		next.ServeHTTP(w, r)
	})
}

// identify reads who r comes from. A new visitor's cookie is set on w at
// once, so that it keeps its identity from its first response on; a cookie
// under an old key is re-issued under the current one.
func (s *Server) identify(w http.ResponseWriter, r *http.Request) (*identity, error) {
	tab, err := optionalUUID(tabIDName, r.Header.Get(headerTabID))
	if err != nil {
		return nil, err
	}
	client, err := optionalUUID(clientIDName, r.Header.Get(headerClientID))
	if err != nil {
		return nil, err
	}
	sess, err := s.cookies.New(r, cookieName)
	uid, _ := sess.Values[sessUserID].(string)
	id := &identity{Viewer: viewmodel.Viewer{UserID: uid}, Returning: err == nil && !sess.IsNew && uid != "",
		TabID: tab, ClientID: client, API: isAPI(r), session: sess}
	if !id.Returning {
		if err != nil {
			s.logger(r.Context()).Debug("cookie did not decode; new identity", "reason", err.Error())
		}
		clear(sess.Values)
		id.UserID = newUserID()
		sess.Values[sessUserID] = id.UserID
	}
	sess.Options.Secure = r.TLS != nil
	if !id.Returning || s.underOldKey(r) {
		if err := id.saveCookie(w, r); err != nil {
			return nil, fmt.Errorf("save cookie: %w", err)
		}
	}
	return id, nil
}

// underOldKey reports whether the request's (valid) cookie was made under
// a secret other than the first, during a rotation.
func (s *Server) underOldKey(r *http.Request) bool {
	codec := s.cookies.Codecs[0].(*cookieCodec)
	if len(codec.codecs) < 2 {
		return false // no rotation under way
	}
	c, err := r.Cookie(cookieName)
	return err == nil && codec.underOldKey(cookieName, c.Value)
}

// newUserID returns a random 128-bit id in hex.
func newUserID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func identityFrom(r *http.Request) *identity {
	return infoFrom(r.Context()).identity
}

// requestInfo is what the middleware learns about a request, under one
// context key: its number, for the logs, and once the cookie is read, who
// is asking. One key means one context (and one copy of the request) for
// both.
type requestInfo struct {
	id       uint64
	identity *identity
}

type ctxKey int

const requestInfoKey ctxKey = 0

// requestInfo returns the request's info, adding it to the request first if
// numberRequests has not.
func (s *Server) requestInfo(r *http.Request) (*requestInfo, *http.Request) {
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

// saveCookie writes the cookie to the response (before its body). Called
// again in the same request it replaces the earlier Set-Cookie.
func (id *identity) saveCookie(w http.ResponseWriter, r *http.Request) error {
	w.Header().Del("Set-Cookie")
	return id.session.Save(r, w)
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
