package viewmodel

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// Origin is who made a change, as v may know it: its own tab, another
// of its tabs by name, or only "another browser" (nothing that tells
// browsers apart), or the API.
func Origin(o store.Origin, at time.Time, v Viewer, now time.Time) views.Origin {
	ov := views.Origin{At: at, Now: now}
	switch {
	case o.UserID == "":
		return views.Origin{} // older than provenance: not known
	case o.API:
		ov.Kind = "api"
	case o.UserID != v.UserID:
		ov.Kind = "other-browser"
	case o.Tab > 0 && o.Tab == v.Tab:
		ov.Kind, ov.TabName = "this-tab", TabName(o.Tab)
	case o.Tab > 0:
		ov.Kind, ov.TabName = "other-tab", TabName(o.Tab)
	default:
		ov.Kind = "other-tab" // this browser, not from a tab
	}
	return ov
}

// TabName is how a tab is named: "Tab 3".
func TabName(n int) string { return "Tab " + strconv.Itoa(n) }

// Presence is who shares scope now, as v sees it. Only pages with a
// live connection count; the tab and client scopes are one page's.
func Presence(scope store.Scope, p store.Presence, v Viewer) views.Presence {
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
		b.WriteString(TabName(n))
		if n == this {
			b.WriteString(" (this one)")
		}
	}
	if more := len(tabs) - len(named); more > 0 {
		b.WriteString(" and " + strconv.Itoa(more) + " more")
	}
	return b.String()
}

// activity is one change as the feed shows it to v.
func activity(scope store.Scope, op store.Op, e store.Entry, v Viewer, now time.Time) views.Activity {
	a := views.Activity{Scope: string(scope), Key: e.Key, Version: e.Version, Origin: Origin(e.Origin, e.UpdatedAt, v, now)}
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
	return cutRunes(DisplayText(v), max)
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

// RecentActivity is the latest changes among what views show (their
// Latest), newest first: the feed a page starts with, one change (the last)
// per key.
func RecentActivity(shown map[store.Scope]store.View, v Viewer, now time.Time) []views.Activity {
	var all []views.Activity
	for scope, view := range shown {
		for _, e := range view.Latest {
			all = append(all, activity(scope, store.OpSet, e, v, now))
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

// DisplayText is how a JSON value shows in a text input: a string as its
// text, anything else as its JSON.
func DisplayText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// GreetingName is the user's name from its entry, or the default.
func GreetingName(e store.Entry) string {
	if e.Version > 0 {
		if name := DisplayText(e.Value); name != "" {
			return name
		}
	}
	return DefaultName
}

// HumanDuration writes a TTL the way a person says it: "30 days", "24 hours".
func HumanDuration(d time.Duration) string {
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
