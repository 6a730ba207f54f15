package viewmodel

import (
	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// Binding is a control of the page bound to one key of one scope.
type Binding struct {
	Scope      store.Scope
	Key, Label string
	Kind       string         // "text", "textarea", "checkbox", "range" or "select"
	Min, Max   int            // a range's bounds
	Def        string         // what a range shows before it is set
	Options    []views.Option // a select's choices
}

// tabColors are the tints a tab can take.
var tabColors = []views.Option{{Value: "", Label: "None"}, {Value: "red", Label: "Red"}, {Value: "amber", Label: "Amber"},
	{Value: "green", Label: "Green"}, {Value: "blue", Label: "Blue"}, {Value: "purple", Label: "Purple"}}

// Bindings are the page's bound controls, in the order they are drawn.
var Bindings = []Binding{
	{Scope: store.General, Key: "global_text", Label: "Global Message", Kind: "text"},
	{Scope: store.General, Key: "shared_notes", Label: "Shared notes", Kind: "textarea"},
	{Scope: store.User, Key: "username", Label: "Your name", Kind: "text"},
	{Scope: store.User, Key: "user_note", Label: "Your Persistent Note", Kind: "text"},
	{Scope: store.User, Key: "dark_mode", Label: "Dark Mode", Kind: "checkbox"},
	{Scope: store.User, Key: "font_size", Label: "Font size", Kind: "range", Min: 12, Max: 24, Def: "16"},
	{Scope: store.Browser, Key: "browser_note", Label: "Browser", Kind: "text"},
	{Scope: store.Tab, Key: "tab_data", Label: "Tab-Specific Data", Kind: "text"},
	{Scope: store.Tab, Key: "tab_color", Label: "Tab color", Kind: "select", Options: tabColors},
	{Scope: store.Client, Key: "client_note", Label: "Client", Kind: "text"},
}

// FindBinding is the control bound to key of scope, if there is one.
func FindBinding(scope store.Scope, key string) (Binding, bool) {
	for _, b := range Bindings {
		if b.Scope == scope && b.Key == key {
			return b, true
		}
	}
	return Binding{}, false
}

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
