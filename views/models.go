// Package views draws the pages and fragments of the app with templ. It only
// draws the plain view models it is handed: no I/O, no store, no sessions.
package views

import "time"

// Page is a full page: the greeting, which tab this is, one panel per
// scope, the activity feed, and the footer.
type Page struct {
	Title       string
	Name        string // the greeting's name
	NameVersion int64  // the user scope's version the name comes from
	Panels      []Panel
	Activity    []Activity // newest first
	Boot        Boot
	LiveURL     string // the live connection's endpoint; empty turns live updates off
	Nav         []NavLink
	Demo        bool // the Restart and Crash server buttons
	Health      Health
	URL         URLScope
	Local       LocalScope
	Survival    []SurvivalRow
	Events      []string // the survival table's columns
}

// Health is whether the storage works now, as the live indicator shows it.
type Health struct {
	State string // "ok", or the fault: "unavailable", "disk-full", "locked"
	Text  string // what the indicator says instead of "Live"
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
	Presence Presence // who shares the scope now
	Fields   []Field
	Visits   string
	// VisitsNote says why this visit was not counted.
	VisitsNote string
	List       List // the inspector's rows
	Lazy       bool
	// Version is the scope's version this panel was drawn from. Every
	// swappable part carries the version it shows as data-v, and the page's
	// script drops an incoming part older than the one it has: a late
	// answer or push never shows an older state over a newer one.
	Version int64

	drawn drawnParts // by NewPanel
}

// List is what the inspector shows of a scope's keys: at most a window of
// them, in key order, those that match its filter; "Show more" brings the
// next ones.
type List struct {
	Scope   string
	Keys    int     // every key the scope holds
	Rows    []Entry // in key order
	Filter  string  // what the keys shown contain
	More    bool    // keys after the last row match too
	Version int64   // the scope's version the rows were read at
	// Append says the rows follow those the page shows (an answer to
	// "Show more"); else they replace them.
	Append bool
	// Window is how many rows the inspector shows at a time: the page
	// names more in its live URL only beyond it.
	Window int
}

// Field is one control bound to a key of a scope.
type Field struct {
	Scope    string
	Key      string
	Label    string
	Kind     string // "text", "textarea", "checkbox", "range" or "select"
	Text     string // the value shown in a text input, text area or range; a select's choice
	Checked  bool   // the state of a checkbox
	Min, Max int    // a range's bounds
	Options  []Option
	Version  int64  // the key's version (0: not set), which an edit is based on
	Origin   Origin // who set it last
}

// KindText is a Field that only shows its key's value, as text.
const KindText = "text-display"

// Value is what the control shows, as its form sends it: a checkbox's
// "true" or "false", else its text or choice.
func (f Field) Value() string {
	if f.Kind == "checkbox" {
		if f.Checked {
			return "true"
		}
		return "false"
	}
	return f.Text
}

// Option is one choice of a select.
type Option struct {
	Value, Label string
	Selected     bool
}

// Entry is one key of the inspector. A long value is shown cut, with its
// size; its whole text is fetched when its row is opened.
type Entry struct {
	Key     string
	JSON    string // the value, or its first characters when Long
	Long    bool
	Size    string // a long value's size: "9.2 KiB"
	Version int64
	Origin  Origin
}

// Origin says who last changed a value, as the one who looks may know it,
// and when. The zero Origin draws nothing.
type Origin struct {
	// Kind is "this-tab", "other-tab" (TabName says which), "other-browser",
	// "api", "unknown" (a change older than provenance), or "" for none.
	Kind    string
	TabName string    // "Tab 3"
	At      time.Time // when the value changed
	Now     time.Time // when this is drawn, for "12 s ago"
}

// Presence says who shares a scope now. The zero Presence draws nothing.
type Presence struct {
	Scope string
	// Text is the line shown: "4 tabs in 2 browsers open now", "3 tabs of
	// this browser open now: Tab 1, Tab 2 (this one), Tab 4", "This tab only".
	Text           string
	Tabs, Browsers int // what the line counts; both 0 for the tab and client scopes
	Counted        bool
}

// Activity is one change in the feed: the scope, the key ("" for a clear),
// what it became, who made it and when.
type Activity struct {
	Scope   string
	Key     string
	Text    string // an excerpt of the new value, or "deleted", "cleared"
	Version int64
	Origin  Origin
}

// Change is one key's change as a page shows it, for a live push and for
// the answer to the write that made it: only what the change touched (its
// bound control, its inspector row, the scope's key count, the counter when
// it is the visits, the greeting when it is the name, one feed item), never
// the rest of the scope.
type Change struct {
	Scope   string
	Version int64 // the change's: what its parts are newer than
	// Fields are the bound control of the key (a set or a delete), or
	// every one of the scope (a clear), as they are now.
	Fields []Field
	// OriginOnly draws only who changed the fields, not the fields: the
	// answer to a bound control, whose text must not be redrawn while the
	// person types.
	OriginOnly bool
	Row        *Entry // a set: the key's inspector row
	Deleted    string // a delete: the key whose row goes
	Cleared    bool   // a clear: every row goes
	Keys       int    // how many keys the scope holds now,
	KeysAt     int64  // as of this version
	Visits     string // the counter, when the key is the visits
	Name       *string
	Activity   *Activity
	// Message is the answer's text for the control that made the change.
	Message string
}

// Conflict is a bound control's change refused because the value changed
// while this page typed: who changed it, to what, at which version.
type Conflict struct {
	Who     string // "by Tab 2"
	Theirs  string // their value, as the control shows it
	Version int64
}

// Visit is the answer to a lazy panel's load: the panel, and for a tab's,
// the tab's name and the changes its page view made (the counters of the
// other scopes, the page last seen).
type Visit struct {
	Panel   Panel
	TabName string
	Changes []Change
}

// ErrorInfo is what an error page says.
type ErrorInfo struct {
	Status     int
	Title      string
	Message    string
	RetryAfter int // seconds; the page reloads itself then
}

// URLScope is the url scope's panel: values in the page's own address, one
// query parameter per key.
type URLScope struct {
	LinkData string // the Link Data control's value
	Max      int    // bytes the query may hold in all
	Note     string // why the scope is drawn empty (a link over Max)
}

// LocalScope is the local scope's panel: values in this browser's
// localStorage, which the page's script draws. The server sends only the
// rules the script applies.
type LocalScope struct {
	Prefix     string // of its keys in localStorage
	ValueBytes int    // of one value's JSON
	KeysMax    int    // keys it may hold
}

// SurvivalRow is one scope's row of the table of what survives what.
type SurvivalRow struct {
	Scope string
	Cells []SurvivalCell // in the order of the table's events
}

// SurvivalCell says whether a scope's value survives one event, and why.
type SurvivalCell struct {
	Event    string
	Survives bool
	Why      string
}
