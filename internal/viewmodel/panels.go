package viewmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// NewHeads makes each scope's panel head once: its title and the line on
// its lifetime, and the parts of the panel drawn from them alone; controls
// are the app's bound controls, in the order a panel draws them.
func NewHeads(storeName string, userTTL, tabTTL time.Duration, controls []Binding) (Heads, error) {
	lines := map[store.Scope][2]string{
		store.General: {"General", "Shared by everyone. Kept in " + storeName + ": survives restarts, forever."},
		store.User: {"User", fmt.Sprintf("This browser, by a signed and encrypted cookie id. Kept in %s: survives restarts; forgotten after %s unused.",
			storeName, HumanDuration(userTTL))},
		store.Browser: {"Browser", "Inside the cookie itself (about 4 KiB in all): lives as long as the cookie, and travels with every request."},
		store.Tab: {"Tab", fmt.Sprintf("This tab only, by an id in sessionStorage. Kept in %s: survives reloads and restarts; a new tab starts empty; forgotten after %s unused.",
			storeName, HumanDuration(tabTTL))},
		store.Client: {"Client", "This page load only. Kept in server memory: gone soon after the page closes, and on restart."},
	}
	heads := Heads{panels: map[store.Scope]views.Panel{}, controls: controls, named: map[store.Scope][]string{}}
	for scope, l := range lines {
		p, err := views.NewPanel(string(scope), l[0], l[1])
		if err != nil {
			return Heads{}, err
		}
		heads.panels[scope] = p
	}
	for _, b := range controls {
		if b.Kind != KindText && !slices.Contains(heads.named[b.Scope], b.Key) {
			heads.named[b.Scope] = append(heads.named[b.Scope], b.Key)
		}
	}
	for _, scope := range PageScopes {
		heads.named[scope] = append(heads.named[scope], KeyVisits)
	}
	return heads, nil
}

// Controls are the app's bound controls.
func (h Heads) Controls() []Binding { return h.controls }

// Bindings are the app's controls bound to key of scope.
func (h Heads) Bindings(scope store.Scope, key string) iter.Seq[Binding] {
	return func(yield func(Binding) bool) {
		for _, b := range h.controls {
			if b.Scope == scope && b.Key == key && !yield(b) {
				return
			}
		}
	}
}

// Binding is the app's control of kind other than a text display bound to
// key of scope, if there is one: the one a change is posted from.
func (h Heads) Binding(scope store.Scope, key string) (Binding, bool) {
	for b := range h.Bindings(scope, key) {
		if b.Kind != KindText {
			return b, true
		}
	}
	return Binding{}, false
}

// InspectorRows is how many keys the inspector shows at a time; "Show
// more" brings as many again.
const InspectorRows = 50

// Window is what a panel of scope shows: its named keys, and the
// first rows of its inspector whose key contains filter.
func (h Heads) Window(scope store.Scope, filter string, rows int) store.Window {
	return store.Window{Named: h.named[scope], Filter: filter, Limit: rows}
}

// WindowIn is what a page shows of scope, from the windows of the scopes
// that do not show the first rows unfiltered.
func (h Heads) WindowIn(windows map[store.Scope]store.Window, scope store.Scope) store.Window {
	if w, ok := windows[scope]; ok {
		return w
	}
	return h.Window(scope, "", InspectorRows)
}

// Panel builds the view of one scope from what its window shows of it
// (Window), as v sees it.
func (h Heads) Panel(scope store.Scope, view store.View, filter string, v Viewer, now time.Time) views.Panel {
	p := h.panels[scope]
	p.Visits, p.Version = "0", view.Version
	for i, key := range h.named[scope] {
		e := view.Named[i]
		if key == KeyVisits {
			if e.Version > 0 {
				p.Visits = string(e.Value)
			}
			continue
		}
		b, _ := h.Binding(scope, key)
		p.Fields = append(p.Fields, FieldOf(b, e, v, now))
	}
	p.List = InspectorList(scope, view, filter, v, now)
	return p
}

// FieldOf is a bound control showing e (Version 0: not set).
func FieldOf(b Binding, e store.Entry, v Viewer, now time.Time) views.Field {
	f := views.Field{Scope: string(b.Scope), Key: b.Key, Label: b.Label, Kind: b.Kind, Min: b.Min, Max: b.Max, Text: b.Def}
	if e.Version > 0 && (b.Kind != KindText || string(e.Value) != `""`) {
		f.Text = DisplayText(e.Value)
		f.Checked = string(e.Value) == "true"
		f.Version, f.Origin = e.Version, Origin(e.Origin, e.UpdatedAt, v, now)
	}
	for _, o := range b.Options {
		o.Selected = o.Value == f.Text
		f.Options = append(f.Options, o)
	}
	return f
}

// InspectorList is the inspector's rows from what a window shows.
func InspectorList(scope store.Scope, view store.View, filter string, v Viewer, now time.Time) views.List {
	l := views.List{Scope: string(scope), Keys: view.Keys, Filter: filter, More: view.More, Version: view.Version, Window: InspectorRows,
		Rows: make([]views.Entry, 0, len(view.Rows))}
	for _, e := range view.Rows {
		l.Rows = append(l.Rows, inspected(e, Origin(e.Origin, e.UpdatedAt, v, now)))
	}
	return l
}

// Named is the entry of key among what a window of scope shows.
func (h Heads) Named(scope store.Scope, view store.View, key string) store.Entry {
	for i, k := range h.named[scope] {
		if k == key && i < len(view.Named) {
			return view.Named[i]
		}
	}
	return store.Entry{}
}

// Change is one change as v sees it: only what it touched. keys is how
// many keys its scope holds as of version keysAt.
func (h Heads) Change(c store.Change, keys int, keysAt int64, v Viewer, now time.Time) views.Change {
	scope := c.Owner.Scope
	e := store.Entry{Key: c.Key, Value: c.Value, Version: c.Version, UpdatedAt: time.UnixMilli(c.At),
		Origin: store.Origin{UserID: c.Origin.UserID, Tab: c.Origin.Tab, API: c.Origin.API}}
	ch := views.Change{Scope: string(scope), Version: c.Version, Keys: keys, KeysAt: keysAt}
	reset := func(b Binding) { ch.Fields = append(ch.Fields, FieldOf(b, store.Entry{}, v, now)) }
	name := DefaultName
	switch c.Op {
	case store.OpSet:
		row := inspected(e, Origin(e.Origin, e.UpdatedAt, v, now))
		ch.Row = &row
		for b := range h.Bindings(scope, c.Key) {
			ch.Fields = append(ch.Fields, FieldOf(b, e, v, now))
		}
		if c.Key == KeyVisits {
			ch.Visits = string(c.Value)
		}
		if scope == store.User && c.Key == KeyUsername {
			name = GreetingName(e)
			ch.Name = &name
		}
	case store.OpDelete:
		ch.Deleted = c.Key
		for b := range h.Bindings(scope, c.Key) {
			reset(b)
		}
		if c.Key == KeyVisits {
			ch.Visits = "0"
		}
		if scope == store.User && c.Key == KeyUsername {
			ch.Name = &name
		}
	case store.OpClear:
		ch.Cleared = true
		for _, b := range h.controls {
			if b.Scope == scope {
				reset(b)
			}
		}
		ch.Visits = "0"
		if scope == store.User {
			ch.Name = &name
		}
	}
	a := activity(scope, c.Op, e, v, now)
	ch.Activity = &a
	return ch
}

// inspectorCut is how many characters of a value the inspector shows before
// it is opened.
const inspectorCut = 120

// inspected is an entry as the inspector shows it: a long value cut, with
// its size (its row fetches it whole when opened: WholeValue).
func inspected(e store.Entry, o views.Origin) views.Entry {
	ie := views.Entry{Key: e.Key, Version: e.Version, Origin: o}
	// Only the first inspectorCut characters are read: a row costs what it
	// shows, however long its value.
	for i, n := 0, 0; i < len(e.Value); n++ {
		if n == inspectorCut {
			ie.Long, ie.JSON, ie.Size = true, string(e.Value[:i]), size(len(e.Value))
			return ie
		}
		_, width := utf8.DecodeRune(e.Value[i:])
		i += width
	}
	ie.JSON = string(e.Value)
	return ie
}

// WholeValue is a value as an opened inspector row shows it: indented, if
// structured.
func WholeValue(v json.RawMessage) string {
	var indented bytes.Buffer
	if json.Indent(&indented, v, "", "  ") == nil {
		return indented.String()
	}
	return string(v)
}

// size writes a number of bytes as a person reads it: "840 B", "9.2 KiB".
func size(n int) string {
	if n < 1024 {
		return strconv.Itoa(n) + " B"
	}
	return strconv.FormatFloat(float64(n)/1024, 'f', 1, 64) + " KiB"
}
