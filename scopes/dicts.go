package scopes

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/storagescopes/app/store"
)

// Each scope's dictionary for the request: who asks is established once,
// by Identify; these read it from the request.

// General is the general scope's dictionary: shared by everyone.
func General(r *http.Request) store.Dict { return mustDict(r, store.General) }

// User is the user scope's dictionary: this browser's, by its cookie.
func User(r *http.Request) store.Dict { return mustDict(r, store.User) }

// Browser is the browser scope's dictionary: inside the cookie itself.
// Change it before the answer begins (else ErrAnswerBegun).
func Browser(r *http.Request) store.Dict { return mustDict(r, store.Browser) }

// Tab is the tab scope's dictionary: an error for a request that names no
// tab (a page's first load; the page's script names it from then on).
func Tab(r *http.Request) (store.Dict, error) { return Dict(r, store.Tab) }

// Client is the page load's dictionary, in the server's memory: an error
// for a request that names no page load.
func Client(r *http.Request) (store.Dict, error) { return Dict(r, store.Client) }

// Dict is the dictionary that scope means for r.
func Dict(r *http.Request, scope store.Scope) (store.Dict, error) {
	return dictOf(r.Context(), scope)
}

// errNoIdentity is a request that did not pass through App.Identify.
var errNoIdentity = errors.New("scopes: who asks is not known: serve the route inside App.Identify (see App.Mount)")

func mustDict(r *http.Request, scope store.Scope) store.Dict {
	d, err := Dict(r, scope)
	if err != nil {
		panic(err)
	}
	return d
}

// dictOf is the dictionary that scope means for the request of ctx.
func dictOf(ctx context.Context, scope store.Scope) (store.Dict, error) {
	id := identityOf(ctx)
	if id == nil {
		return nil, errNoIdentity
	}
	origin := id.Origin()
	switch scope {
	case store.General:
		return store.NewDict(id.app.store, store.GeneralOwner, origin), nil
	case store.User:
		return store.NewDict(id.app.store, store.UserOwner(id.UserID), origin), nil
	case store.Tab:
		if id.TabID == "" {
			return nil, badRequest(tabIDName + " is missing")
		}
		return store.NewDict(id.app.store, store.TabOwner(id.UserID, id.TabID), origin), nil
	case store.Browser:
		return store.NewMemDict(cookieKeeper{id}, origin), nil
	case store.Client:
		if id.ClientID == "" {
			return nil, badRequest(clientIDName + " is missing")
		}
		return id.app.clients.Dict(origin), nil
	}
	return nil, notFound(fmt.Sprintf("unknown scope %q: use general, user, browser, tab or client", scope))
}
