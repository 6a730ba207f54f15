// Package viewmodel turns what the store holds into what the views draw,
// as one viewer may see it: a scope's panel, one change, who made it, who
// shares the scope, the feed. Its functions are pure: no I/O, no clock of
// their own (now is handed in), no HTTP. The handlers draw pages and
// answers with it, and the live hub its pushes.
package viewmodel

import (
	"time"

	"github.com/a-h/templ"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// Viewer is who looks at what is drawn: a browser and, when it is known,
// which of its tabs. What others did is drawn as the viewer may know it.
type Viewer struct {
	UserID string
	Tab    int // 0: not known (a page's first load names no tab)
}

// Heads are what every page of an app draws alike: each scope's panel as
// drawn from its title and lifetime line alone, made once (a panel starts
// from its head), and the app's bound controls.
type Heads struct {
	panels   map[store.Scope]views.Panel
	controls []Binding
	named    map[store.Scope][]string // per scope, its controls' keys and its counter
}

// Head is scope's panel as drawn from its head alone.
func (h Heads) Head(scope store.Scope) views.Panel { return h.panels[scope] }

// DrawChange is one change as v sees it, for a live push; keys is how many
// keys its scope holds as of version keysAt.
func (h Heads) DrawChange(c store.Change, keys int, keysAt int64, v Viewer, now time.Time) templ.Component {
	return views.Changed(h.Change(c, keys, keysAt, v, now))
}

// DrawPanel is every part of a loaded panel that can change, from what
// window w shows of its scope, as v sees it: what a page is sent when it
// (re)joins.
func (h Heads) DrawPanel(scope store.Scope, view store.View, w store.Window, v Viewer, now time.Time) templ.Component {
	p := h.Panel(scope, view, w.Filter, v, now)
	var name *string
	if scope == store.User {
		n := GreetingName(h.Named(scope, view, KeyUsername))
		name = &n
	}
	return views.PanelParts(p, name)
}

// DrawPresence is the presence line of scope as v sees it, out of band.
func DrawPresence(scope store.Scope, p store.Presence, v Viewer) templ.Component {
	return views.PushedPresence(Presence(scope, p, v))
}

// DrawHealth is the live indicator's storage state, out of band.
func DrawHealth(fault error) templ.Component {
	return views.HealthUpdate(Health(fault))
}

// Health is the storage's state as the live indicator shows it.
func Health(fault error) views.Health {
	if fault == nil {
		return views.Health{State: "ok"}
	}
	f := FaultOf(fault)
	return views.Health{State: f.State, Text: f.Indicator}
}

// FaultReason says in words what a store fault is.
func FaultReason(err error) string { return FaultOf(err).Reason }

// SetBy is the change a set made, from the entry it stored.
func SetBy(scope store.Scope, e store.Entry) store.Change {
	return store.Change{Owner: store.Owner{Scope: scope}, Op: store.OpSet, Key: e.Key, Value: e.Value, Version: e.Version,
		At: e.UpdatedAt.UnixMilli(), Origin: e.Origin}
}

// MadeBy is a change of key made at now by origin (a delete or a clear,
// which return only their version), as a push would carry it.
func MadeBy(origin store.Origin, scope store.Scope, op store.Op, key string, version int64, now time.Time) store.Change {
	return store.Change{Owner: store.Owner{Scope: scope}, Op: op, Key: key, Version: version, At: now.UnixMilli(),
		Origin: store.Origin{UserID: origin.UserID, Tab: origin.Tab, API: origin.API}}
}
