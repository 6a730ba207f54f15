package handlers

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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

// panel builds the view of one scope from a snapshot of it, as v sees it.
func (s *Server) panel(scope store.Scope, snap store.Snapshot, v viewer, now time.Time) views.Panel {
	p := s.panelData(scope, snap, v, now)
	for _, b := range bindings {
		if b.scope != scope {
			continue
		}
		f := views.Field{Scope: string(scope), Key: b.key, Label: b.label, Kind: b.kind, Min: b.min, Max: b.max, Text: b.def}
		if e, ok := findEntry(snap.Entries, b.key); ok {
			f.Text = displayText(e.Value)
			f.Checked = string(e.Value) == "true"
			f.Version, f.Origin = e.Version, originView(e.Origin, e.UpdatedAt, v, now)
		}
		for _, o := range b.options {
			o.Selected = o.Value == f.Text
			f.Options = append(f.Options, o)
		}
		p.Fields = append(p.Fields, f)
	}
	return p
}

// panelData is a panel without its bound controls: what the answer to a
// bound control carries.
func (s *Server) panelData(scope store.Scope, snap store.Snapshot, v viewer, now time.Time) views.Panel {
	p := s.heads[scope]
	p.Visits, p.Version = "0", snap.Version
	p.Entries = make([]views.Entry, 0, len(snap.Entries))
	for _, e := range snap.Entries {
		p.Entries = append(p.Entries, inspected(e, originView(e.Origin, e.UpdatedAt, v, now)))
	}
	if e, ok := findEntry(snap.Entries, keyVisits); ok {
		p.Visits = string(e.Value)
	}
	return p
}

// inspectorCut is how many characters of a value the inspector shows before
// it is opened.
const inspectorCut = 120

// inspected is an entry as the inspector shows it: a long value cut, with
// its size, and whole (indented, if structured) on request.
func inspected(e store.Entry, o views.Origin) views.Entry {
	ie := views.Entry{Key: e.Key, JSON: string(e.Value), Version: e.Version, Origin: o}
	if utf8.RuneCount(e.Value) <= inspectorCut {
		return ie
	}
	ie.Long, ie.JSON, ie.Size = true, string([]rune(string(e.Value))[:inspectorCut]), size(len(e.Value))
	var indented bytes.Buffer
	if json.Indent(&indented, e.Value, "", "  ") == nil {
		ie.Full = indented.String()
	} else {
		ie.Full = string(e.Value)
	}
	return ie
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

// excerpt is a value cut short enough for one line of the feed.
func excerpt(v json.RawMessage) string {
	const max = 40
	text := displayText(v)
	if utf8.RuneCountInString(text) <= max {
		return text
	}
	r := []rune(text)
	return string(r[:max]) + "…"
}

// recentActivity is the latest changes among snapshots, newest first: the
// feed a page starts with, one change (the last) per key.
func recentActivity(snaps map[store.Scope]store.Snapshot, v viewer, now time.Time) []views.Activity {
	var all []views.Activity
	for scope, snap := range snaps {
		for _, e := range snap.Entries {
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

// findEntry finds key among entries (a scan: a panel looks up a few keys).
func findEntry(entries []store.Entry, key string) (store.Entry, bool) {
	for _, e := range entries {
		if e.Key == key {
			return e, true
		}
	}
	return store.Entry{}, false
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

// greetingName is the user's name, or the default.
func greetingName(entries []store.Entry) string {
	if e, ok := findEntry(entries, keyUsername); ok {
		if name := displayText(e.Value); name != "" {
			return name
		}
	}
	return defaultName
}

// renderUpdate answers a write: message for where it came from, and fresh
// copies of the scope's counter, entries, greeting and (unless noFields, for
// the answer to a bound control) controls, and the change for the feed.
func (s *Server) renderUpdate(w http.ResponseWriter, r *http.Request, scope store.Scope, d dict, noFields bool, message string, op store.Op, changed store.Entry) error {
	ctx := r.Context()
	snap, err := d.List(ctx)
	if err != nil {
		return err
	}
	v, err := s.viewerOf(ctx, identityFrom(r))
	if err != nil {
		return err
	}
	now := time.Now()
	u := views.Update{NoFields: noFields, Message: message}
	if noFields {
		// The answer to a bound control: the scope's data, and who changed
		// the control (this page), not the controls themselves.
		u.Panel = s.panelData(scope, snap, v, now)
		if b, ok := findBinding(scope, changed.Key); ok {
			e, _ := findEntry(snap.Entries, b.key)
			u.Panel.Fields = []views.Field{{Scope: string(scope), Key: b.key, Origin: originView(e.Origin, e.UpdatedAt, v, now)}}
		}
	} else {
		u.Panel = s.panel(scope, snap, v, now)
	}
	if scope == store.User {
		name := greetingName(snap.Entries)
		u.Name = &name
	}
	if op != "" {
		if op != store.OpSet { // what went, as of now, by this page
			changed.Version = snap.Version
			changed.UpdatedAt, changed.Origin = now, store.Origin{UserID: v.UserID, Tab: v.Tab, API: isAPI(r)}
		}
		u.Activity = []views.Activity{activityOf(scope, op, changed, v, now)}
	}
	return render(w, r, http.StatusOK, views.ScopeUpdate(u))
}

// drawPart draws what a live push sends of one scope: every part of its
// panel, out of band, as v sees it, with the scope's recent changes for the
// feed.
func (s *Server) drawPart(scope store.Scope, snap store.Snapshot, v viewer, recent []store.Change) []byte {
	now := time.Now()
	u := views.Update{Panel: s.panel(scope, snap, v, now)}
	if scope == store.User {
		name := greetingName(snap.Entries)
		u.Name = &name
	}
	for _, c := range recent {
		e, ok := findEntry(snap.Entries, c.Key)
		if !ok || e.Version != c.Version || c.Op != store.OpSet {
			e = store.Entry{Key: c.Key, Value: c.Value, Version: c.Version}
		}
		e.UpdatedAt, e.Origin = time.UnixMilli(c.At), c.Origin
		u.Activity = append(u.Activity, activityOf(scope, c.Op, e, v, now))
	}
	var buf bytes.Buffer
	if err := views.Pushed(u).Render(context.Background(), &buf); err != nil {
		s.log.Error("live: render", "error", err)
	}
	return buf.Bytes()
}

// drawRejoined draws what a (re)joining page is told besides its scopes.
func (s *Server) drawRejoined(b store.Boot, restarted bool) []byte {
	var buf bytes.Buffer
	if err := views.Rejoined(views.Boot(b), restarted).Render(context.Background(), &buf); err != nil {
		s.log.Error("live: render", "error", err)
	}
	return buf.Bytes()
}

// drawPresence draws the presence line of scope as v sees it, out of band.
func (s *Server) drawPresence(scope store.Scope, p store.Presence, v viewer) []byte {
	var buf bytes.Buffer
	if err := views.PushedPresence(presenceView(scope, p, v)).Render(context.Background(), &buf); err != nil {
		s.log.Error("live: render presence", "error", err)
	}
	return buf.Bytes()
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
