package handlers

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/a-h/templ"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// Panels: the view of a scope drawn from a snapshot of it, for the page,
// for the answer to a write, and for a live push; who changed what, as the
// viewer may know it; who shares the scope now; the activity feed.

// panelHeads makes each scope's panel head once: its title and the line on
// its lifetime, and the parts of the panel drawn from them alone.
func panelHeads(storeName string, userTTL, tabTTL time.Duration) (map[store.Scope]views.Panel, error) {
	lines := map[store.Scope][2]string{
		store.General: {"General", "Shared by everyone. Kept in " + storeName + ": survives restarts, forever."},
		store.User: {"User", fmt.Sprintf("This browser, by a signed and encrypted cookie id. Kept in %s: survives restarts; forgotten after %s unused.",
			storeName, humanDuration(userTTL))},
		store.Browser: {"Browser", "Inside the cookie itself (about 4 KiB in all): lives as long as the cookie, and travels with every request."},
		store.Tab: {"Tab", fmt.Sprintf("This tab only, by an id in sessionStorage. Kept in %s: survives reloads and restarts; a new tab starts empty; forgotten after %s unused.",
			storeName, humanDuration(tabTTL))},
		store.Client: {"Client", "This page load only. Kept in server memory: gone soon after the page closes, and on restart."},
	}
	heads := map[store.Scope]views.Panel{}
	for scope, l := range lines {
		p, err := views.NewPanel(string(scope), l[0], l[1])
		if err != nil {
			return nil, err
		}
		heads[scope] = p
	}
	return heads, nil
}

// inspectorRows is how many keys the inspector shows at a time; "Show
// more" brings as many again.
const inspectorRows = 50

// namedKeys are the keys a panel of each scope shows whatever its inspector
// shows: its bound controls' (in the order they are drawn) and its counter.
var namedKeys = func() map[store.Scope][]string {
	m := map[store.Scope][]string{}
	for _, b := range bindings {
		m[b.scope] = append(m[b.scope], b.key)
	}
	for _, scope := range pageScopes {
		m[scope] = append(m[scope], keyVisits)
	}
	return m
}()

// panelWindow is what a panel of scope shows: its named keys, and the
// first rows of its inspector whose key contains filter.
func panelWindow(scope store.Scope, filter string, rows int) store.Window {
	return store.Window{Named: namedKeys[scope], Filter: filter, Limit: rows}
}

// panel builds the view of one scope from what its window shows of it
// (panelWindow), as v sees it.
func (s *Server) panel(scope store.Scope, view store.View, filter string, v viewer, now time.Time) views.Panel {
	p := s.heads[scope]
	p.Visits, p.Version = "0", view.Version
	for i, key := range namedKeys[scope] {
		e := view.Named[i]
		if key == keyVisits {
			if e.Version > 0 {
				p.Visits = string(e.Value)
			}
			continue
		}
		b, _ := findBinding(scope, key)
		p.Fields = append(p.Fields, fieldOf(b, e, v, now))
	}
	p.List = inspectorList(scope, view, filter, v, now)
	return p
}

// fieldOf is a bound control showing e (Version 0: not set).
func fieldOf(b binding, e store.Entry, v viewer, now time.Time) views.Field {
	f := views.Field{Scope: string(b.scope), Key: b.key, Label: b.label, Kind: b.kind, Min: b.min, Max: b.max, Text: b.def}
	if e.Version > 0 {
		f.Text = displayText(e.Value)
		f.Checked = string(e.Value) == "true"
		f.Version, f.Origin = e.Version, originView(e.Origin, e.UpdatedAt, v, now)
	}
	for _, o := range b.options {
		o.Selected = o.Value == f.Text
		f.Options = append(f.Options, o)
	}
	return f
}

// inspectorList is the inspector's rows from what a window shows.
func inspectorList(scope store.Scope, view store.View, filter string, v viewer, now time.Time) views.List {
	l := views.List{Scope: string(scope), Keys: view.Keys, Filter: filter, More: view.More, Version: view.Version,
		Rows: make([]views.Entry, 0, len(view.Rows))}
	for _, e := range view.Rows {
		l.Rows = append(l.Rows, inspected(e, originView(e.Origin, e.UpdatedAt, v, now)))
	}
	return l
}

// named is the entry of key among what a window of scope shows.
func named(scope store.Scope, view store.View, key string) store.Entry {
	for i, k := range namedKeys[scope] {
		if k == key && i < len(view.Named) {
			return view.Named[i]
		}
	}
	return store.Entry{}
}

// changeView is one change as v sees it: only what it touched. keys is how
// many keys its scope holds as of version keysAt.
func changeView(c store.Change, keys int, keysAt int64, v viewer, now time.Time) views.Change {
	scope := c.Owner.Scope
	e := store.Entry{Key: c.Key, Value: c.Value, Version: c.Version, UpdatedAt: time.UnixMilli(c.At),
		Origin: store.Origin{UserID: c.Origin.UserID, Tab: c.Origin.Tab, API: c.Origin.API}}
	ch := views.Change{Scope: string(scope), Version: c.Version, Keys: keys, KeysAt: keysAt}
	reset := func(b binding) { ch.Fields = append(ch.Fields, fieldOf(b, store.Entry{}, v, now)) }
	name := defaultName
	switch c.Op {
	case store.OpSet:
		row := inspected(e, originView(e.Origin, e.UpdatedAt, v, now))
		ch.Row = &row
		if b, ok := findBinding(scope, c.Key); ok {
			ch.Fields = []views.Field{fieldOf(b, e, v, now)}
		}
		if c.Key == keyVisits {
			ch.Visits = string(c.Value)
		}
		if scope == store.User && c.Key == keyUsername {
			name = greetingName(e)
			ch.Name = &name
		}
	case store.OpDelete:
		ch.Deleted = c.Key
		if b, ok := findBinding(scope, c.Key); ok {
			reset(b)
		}
		if c.Key == keyVisits {
			ch.Visits = "0"
		}
		if scope == store.User && c.Key == keyUsername {
			ch.Name = &name
		}
	case store.OpClear:
		ch.Cleared = true
		for _, b := range bindings {
			if b.scope == scope {
				reset(b)
			}
		}
		ch.Visits = "0"
		if scope == store.User {
			ch.Name = &name
		}
	}
	a := activityOf(scope, c.Op, e, v, now)
	ch.Activity = &a
	return ch
}

// inspectorCut is how many characters of a value the inspector shows before
// it is opened.
const inspectorCut = 120

// inspected is an entry as the inspector shows it: a long value cut, with
// its size (its row fetches it whole when opened: wholeValue).
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

// wholeValue is a value as an opened inspector row shows it: indented, if
// structured.
func wholeValue(v json.RawMessage) string {
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

// originView is who made a change, as v may know it: its own tab, another
// of its tabs by name, or only "another browser" (nothing that tells
// browsers apart), or the API.
func originView(o store.Origin, at time.Time, v viewer, now time.Time) views.Origin {
	ov := views.Origin{At: at, Now: now}
	switch {
	case o.UserID == "":
		return views.Origin{} // older than provenance: not known
	case o.API:
		ov.Kind = "api"
	case o.UserID != v.UserID:
		ov.Kind = "other-browser"
	case o.Tab > 0 && o.Tab == v.Tab:
		ov.Kind, ov.TabName = "this-tab", tabName(o.Tab)
	case o.Tab > 0:
		ov.Kind, ov.TabName = "other-tab", tabName(o.Tab)
	default:
		ov.Kind = "other-tab" // this browser, not from a tab
	}
	return ov
}

func tabName(n int) string { return "Tab " + strconv.Itoa(n) }

// presenceView is who shares scope now, as v sees it. Only pages with a
// live connection count; the tab and client scopes are one page's.
func presenceView(scope store.Scope, p store.Presence, v viewer) views.Presence {
	pr := views.Presence{Scope: string(scope), Counted: true}
	switch scope {
	case store.General:
		for _, tabs := range p {
			pr.Tabs += len(tabs)
		}
		pr.Browsers = len(p)
		pr.Text = fmt.Sprintf("%s in %s open now", plural(int64(pr.Tabs), "tab"), plural(int64(pr.Browsers), "browser"))
	case store.User, store.Browser:
		tabs := p[v.UserID]
		pr.Tabs, pr.Browsers = len(tabs), 1
		pr.Text = plural(int64(pr.Tabs), "tab") + " of this browser open now"
		if len(tabs) > 0 {
			pr.Text += ": " + tabList(tabs, v.Tab)
		}
	case store.Tab:
		pr = views.Presence{Scope: string(scope), Text: "This tab only: a duplicated tab is another tab."}
	case store.Client:
		pr = views.Presence{Scope: string(scope), Text: "This page load only."}
	}
	return pr
}

// presenceNames is how many tabs a presence line names; the rest it counts.
const presenceNames = 8

// tabList names a browser's open tabs, at most presenceNames of them, this
// one marked and always named.
func tabList(tabs []int, this int) string {
	named := tabs[:min(len(tabs), presenceNames)]
	if slices.Contains(tabs, this) && !slices.Contains(named, this) {
		named = append(slices.Clone(named[:len(named)-1]), this)
	}
	var b strings.Builder
	for i, n := range named {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tabName(n))
		if n == this {
			b.WriteString(" (this one)")
		}
	}
	if more := len(tabs) - len(named); more > 0 {
		b.WriteString(" and " + strconv.Itoa(more) + " more")
	}
	return b.String()
}

// activityOf is one change as the feed shows it to v.
func activityOf(scope store.Scope, op store.Op, e store.Entry, v viewer, now time.Time) views.Activity {
	a := views.Activity{Scope: string(scope), Key: e.Key, Version: e.Version, Origin: originView(e.Origin, e.UpdatedAt, v, now)}
	switch op {
	case store.OpDelete:
		a.Text = "deleted"
	case store.OpClear:
		a.Key, a.Text = "", "cleared"
	default:
		a.Text = excerpt(e.Value)
	}
	if a.Origin.Kind == "" { // older than provenance: still a change, at a time
		a.Origin = views.Origin{Kind: "unknown", At: e.UpdatedAt, Now: now}
	}
	return a
}

// excerpt is a value cut short enough for one line of the feed. Only the
// start of a long value is read: a feed of 16 KiB values costs what it
// shows.
func excerpt(v json.RawMessage) string {
	const max = 40
	if head := 4 * (max + 1); len(v) > head && v[0] != '"' {
		// A long array or object shows as its JSON: its first bytes (a
		// character is at most four) hold more characters than are shown.
		return cutRunes(string(v[:head]), max)
	}
	if head := 6 * (max + 1); len(v) > head+12 {
		// A long string: its first bytes, closed, decode to its first
		// characters (an escape is at most 12 bytes, so one of the last
		// few cuts is whole).
		for end := head; end > head-12; end-- {
			var s string
			if json.Unmarshal(append(v[:end:end], '"'), &s) == nil && utf8.RuneCountInString(s) > max {
				return cutRunes(s, max)
			}
		}
	}
	return cutRunes(displayText(v), max)
}

// cutRunes is text cut to max characters, marked when cut.
func cutRunes(text string, max int) string {
	n := 0
	for i := range text {
		if n == max {
			return text[:i] + "…"
		}
		n++
	}
	return text
}

// recentActivity is the latest changes among what views show (their
// Latest), newest first: the feed a page starts with, one change (the last)
// per key.
func recentActivity(shown map[store.Scope]store.View, v viewer, now time.Time) []views.Activity {
	var all []views.Activity
	for scope, view := range shown {
		for _, e := range view.Latest {
			all = append(all, activityOf(scope, store.OpSet, e, v, now))
		}
	}
	sortActivity(all)
	return all[:min(len(all), views.FeedMax)]
}

// sortActivity puts the newest change first.
func sortActivity(a []views.Activity) {
	slices.SortStableFunc(a, func(x, y views.Activity) int {
		return cmp.Or(y.Origin.At.Compare(x.Origin.At), cmp.Compare(y.Version, x.Version))
	})
}

// displayText is how a JSON value shows in a text input: a string as its
// text, anything else as its JSON.
func displayText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// greetingName is the user's name from its entry, or the default.
func greetingName(e store.Entry) string {
	if e.Version > 0 {
		if name := displayText(e.Value); name != "" {
			return name
		}
	}
	return defaultName
}

// renderChange answers a write with message and the change it made, as
// this page sees it: its parts, out of band (originOnly: only who changed
// the bound control, for the answer to that control).
func (s *Server) renderChange(w http.ResponseWriter, r *http.Request, d dict, c store.Change, originOnly bool, message string) error {
	ctx := r.Context()
	counted, err := d.View(ctx, store.Window{})
	if err != nil {
		return err
	}
	v, err := s.viewerOf(ctx, identityFrom(r))
	if err != nil {
		return err
	}
	ch := changeView(c, counted.Keys, counted.Version, v, time.Now())
	ch.OriginOnly, ch.Message = originOnly, message
	return render(w, r, http.StatusOK, views.ChangeAnswer(ch))
}

// madeBy is a change of key made now by v's request r (a delete or a
// clear, which return only their version), as a push would carry it.
func madeBy(r *http.Request, v viewer, scope store.Scope, op store.Op, key string, version int64) store.Change {
	return store.Change{Owner: store.Owner{Scope: scope}, Op: op, Key: key, Version: version, At: time.Now().UnixMilli(),
		Origin: store.Origin{UserID: v.UserID, Tab: v.Tab, API: isAPI(r)}}
}

// setBy is the change a set made, from the entry it stored.
func setBy(scope store.Scope, e store.Entry) store.Change {
	return store.Change{Owner: store.Owner{Scope: scope}, Op: store.OpSet, Key: e.Key, Value: e.Value, Version: e.Version,
		At: e.UpdatedAt.UnixMilli(), Origin: e.Origin}
}

// drawChange is one change as v sees it, for a live push.
func (s *Server) drawChange(c store.Change, keys int, keysAt int64, v viewer) templ.Component {
	return views.Changed(changeView(c, keys, keysAt, v, time.Now()))
}

// drawPanel is every part of a loaded panel that can change, from what
// window w shows of its scope, as v sees it: what a page is sent when it
// (re)joins.
func (s *Server) drawPanel(scope store.Scope, view store.View, w store.Window, v viewer) templ.Component {
	p := s.panel(scope, view, w.Filter, v, time.Now())
	var name *string
	if scope == store.User {
		n := greetingName(named(scope, view, keyUsername))
		name = &n
	}
	return views.PanelParts(p, name)
}

// drawPresence is the presence line of scope as v sees it, out of band.
func (s *Server) drawPresence(scope store.Scope, p store.Presence, v viewer) templ.Component {
	return views.PushedPresence(presenceView(scope, p, v))
}

// drawHealth is the live indicator's storage state, out of band.
func (s *Server) drawHealth(fault error) templ.Component {
	return views.HealthUpdate(healthView(fault))
}

// drawRejoined is what a (re)joining page is told besides its scopes.
func (s *Server) drawRejoined(b store.Boot, restarted bool) templ.Component {
	return views.Rejoined(views.Boot(b), restarted)
}

// humanDuration writes a TTL the way a person says it: "30 days", "24 hours".
func humanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "never"
	case d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	}
	return d.String()
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
