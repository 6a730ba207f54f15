package viewmodel

import (
	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// Binding is a control of the page bound to one key of one scope.
type Binding struct {
	Scope      store.Scope
	Key, Label string
	Kind       string         // "text", "textarea", "checkbox", "range", "select", or KindText
	Min, Max   int            // a range's bounds
	Def        string         // what a range shows before it is set
	Options    []views.Option // a select's choices
}

// KindText is a control that only shows its key's value (or Def).
const KindText = views.KindText

// PageScopes are the scopes of the page, widest first; the tab and client
// panels load themselves once the page's script can name the tab and page.
var PageScopes = []store.Scope{store.General, store.User, store.Browser, store.Tab, store.Client}

// Keys the page itself writes.
const (
	KeyVisits      = "visits"
	KeyUsername    = "username"
	KeyLastVisited = "last_visited_page"
	DefaultName    = "Guest"
)
