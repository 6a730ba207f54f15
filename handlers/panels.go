package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// Panels: the view of a scope drawn from a snapshot of it, for the page,
// for the answer to a write, and for a live push.

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

// panel builds the view of one scope from a snapshot of it.
func (s *Server) panel(scope store.Scope, snap store.Snapshot) views.Panel {
	p := s.panelData(scope, snap)
	for _, b := range bindings {
		if b.scope != scope {
			continue
		}
		f := views.Field{Scope: string(scope), Key: b.key, Label: b.label, Checkbox: b.checkbox}
		if e, ok := findEntry(snap.Entries, b.key); ok {
			f.Text = displayText(e.Value)
			f.Checked = string(e.Value) == "true"
		}
		p.Fields = append(p.Fields, f)
	}
	return p
}

// panelData is a panel without its bound controls: what the answer to a
// bound control carries.
func (s *Server) panelData(scope store.Scope, snap store.Snapshot) views.Panel {
	p := s.heads[scope]
	p.Visits, p.Version = "0", snap.Version
	p.Entries = make([]views.Entry, 0, len(snap.Entries))
	for _, e := range snap.Entries {
		p.Entries = append(p.Entries, views.Entry{Key: e.Key, JSON: string(e.Value), Version: e.Version})
	}
	if e, ok := findEntry(snap.Entries, keyVisits); ok {
		p.Visits = string(e.Value)
	}
	return p
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
// the answer to a bound control) controls.
func (s *Server) renderUpdate(w http.ResponseWriter, r *http.Request, scope store.Scope, d dict, noFields bool, message string) error {
	snap, err := d.List(r.Context())
	if err != nil {
		return err
	}
	u := views.Update{NoFields: noFields, Message: message}
	if noFields {
		u.Panel = s.panelData(scope, snap)
	} else {
		u.Panel = s.panel(scope, snap)
	}
	if scope == store.User {
		name := greetingName(snap.Entries)
		u.Name = &name
	}
	return render(w, r, http.StatusOK, views.ScopeUpdate(u))
}

// drawPart draws what a live push sends of one scope: every part of its
// panel, out of band.
func (s *Server) drawPart(scope store.Scope, snap store.Snapshot) []byte {
	u := views.Update{Panel: s.panel(scope, snap)}
	if scope == store.User {
		name := greetingName(snap.Entries)
		u.Name = &name
	}
	var buf bytes.Buffer
	if err := views.Pushed(u).Render(context.Background(), &buf); err != nil {
		s.log.Error("live: render", "error", err)
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
