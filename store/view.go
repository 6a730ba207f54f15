package store

import (
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// Snapshot is one owner's keys as of one moment.
type Snapshot struct {
	Entries []Entry // sorted by key
	// Version is the store-wide version sequence at that moment: a snapshot
	// with a higher version is never older.
	Version int64
}

// Window is the part of one owner's keys that a page shows: the keys it
// names (its bound controls, its counter), up to Limit rows of its
// inspector (the keys after After, in key order, that match Filter), and
// the Latest most recently changed keys (its activity feed).
type Window struct {
	Named  []string
	Filter string
	After  string
	Limit  int
	Latest int
}

// View is what a Window shows of one owner, as of one moment.
type View struct {
	Version int64   // as Snapshot.Version
	Keys    int     // every key the owner holds
	Named   []Entry // one per Window.Named, in its order; Version 0: not set
	Rows    []Entry // sorted by key
	More    bool    // more keys after the last row match the filter
	Latest  []Entry // newest first
}

// Matches reports whether key is shown under an inspector's filter: it
// contains the filter, in any case. The page's script repeats this rule
// (static/app.js, matches), to place a pushed key; both lower-case by
// Unicode's full mapping, as JavaScript's toLowerCase does (İ is i̇, a
// final Σ is ς), and a browser test holds them equal.
func Matches(key, filter string) bool {
	var l lowerer
	return matches(key, l.lower(filter), &l)
}

// matches is Matches with the filter in lower case already.
func matches(key, lower string, l *lowerer) bool {
	return lower == "" || strings.Contains(l.lower(key), lower)
}

// Lower is s in lower case as JavaScript's toLowerCase makes it: Unicode's
// full mapping, with the final sigma.
func Lower(s string) string {
	var l lowerer
	return l.lower(s)
}

// lowerer lower-cases as Lower does: ASCII, the common case, the short
// way; the rest through one Caser, made once for all the keys of a view.
type lowerer struct{ caser *cases.Caser }

func (l *lowerer) lower(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			if l.caser == nil {
				c := cases.Lower(language.Und)
				l.caser = &c
			}
			return l.caser.String(s)
		}
	}
	return strings.ToLower(s)
}

// View is what w shows of s. It copies only what it shows: Entries may be
// shared (the snapshot caches call it under their lock).
func (s Snapshot) View(w Window) View {
	v := View{Version: s.Version, Keys: len(s.Entries)}
	if len(w.Named) > 0 {
		v.Named = make([]Entry, len(w.Named))
		for i, key := range w.Named {
			if j, ok := search(s.Entries, key); ok {
				v.Named[i] = s.Entries[j]
			} else {
				v.Named[i] = Entry{Key: key}
			}
		}
	}
	if w.Limit > 0 {
		var l lowerer
		filter := l.lower(w.Filter)
		from := 0
		if w.After != "" {
			i, found := search(s.Entries, w.After)
			from = i
			if found {
				from++
			}
		}
		for _, e := range s.Entries[from:] {
			if !matches(e.Key, filter, &l) {
				continue
			}
			if len(v.Rows) == w.Limit {
				v.More = true
				break
			}
			v.Rows = append(v.Rows, e)
		}
	}
	if w.Latest > 0 {
		// The newest w.Latest, newest first, kept as indices: most keys
		// are older than every one kept and cost one comparison.
		latest := make([]int, 0, w.Latest+1)
		for i := range s.Entries {
			e := &s.Entries[i]
			if len(latest) == w.Latest && !newer(e, &s.Entries[latest[w.Latest-1]]) {
				continue
			}
			j := len(latest)
			for j > 0 && newer(e, &s.Entries[latest[j-1]]) {
				j--
			}
			latest = slices.Insert(latest, j, i)
			if len(latest) > w.Latest {
				latest = latest[:w.Latest]
			}
		}
		v.Latest = make([]Entry, len(latest))
		for k, i := range latest {
			v.Latest[k] = s.Entries[i]
		}
	}
	return v
}

// newer reports whether a changed after b.
func newer(a, b *Entry) bool {
	if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
		return c > 0
	}
	return a.Version > b.Version
}
