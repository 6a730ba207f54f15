// Package views draws the pages and fragments of the app with templ. It only
// draws the plain view models it is handed: no I/O, no store, no sessions.
package views

import "time"

// Page is a full page: the greeting, one panel per scope, and the footer.
type Page struct {
	Title       string
	Name        string // the greeting's name
	NameVersion int64  // the user scope's version the name comes from
	Panels      []Panel
	Boot        Boot
	LiveURL     string // the live connection's endpoint; empty turns live updates off
	Nav         []NavLink
}

// NavLink is one link of the page navigation.
type NavLink struct {
	Path, Label string
	Current     bool
}

// Boot is shown in the footer so that a restart is visible.
type Boot struct {
	Number int64
	Time   time.Time
}

// Panel is one scope: what it is, how long it lives, its bound controls, its
// visit counter and its inspector. A lazy panel is a placeholder that loads
// itself once the page is up (the tab and client scopes need headers that
// only the page's script can send).
//
// Make a scope's panel once with NewPanel and copy it for each render: the
// parts that never change are then drawn only once.
type Panel struct {
	Scope    string
	Title    string
	Lifetime string
	Fields   []Field
	Visits   string
	Entries  []Entry
	Lazy     bool
	// Version is the scope's version this panel was drawn from. Every
	// swappable part carries it as data-v, and the page's script drops an
	// incoming part older than the one it has: a late answer or push never
	// shows an older state over a newer one.
	Version int64

	drawn drawnParts // by NewPanel
}

// Field is one control bound to a key of a scope.
type Field struct {
	Scope    string
	Key      string
	Label    string
	Checkbox bool
	Text     string // the value shown in a text input
	Checked  bool   // the state of a checkbox
}

// Entry is one key of the inspector.
type Entry struct {
	Key     string
	JSON    string
	Version int64
}

// Update is the answer to a write, and what a live push sends: the
// message for the control that made the write, and fresh copies of
// everything of the scope that may have changed, swapped in by id.
type Update struct {
	Panel Panel
	// NoFields leaves the scope's bound controls out: the answer to a bound
	// control, whose own value must not be redrawn while the person types,
	// and whose sibling controls the live connection keeps current.
	NoFields bool
	// Name is the new greeting when the user scope changed.
	Name *string
	// Message is shown where the write came from ("Saved", "Deleted …").
	Message string
}
