// Package store keeps the storage scopes. This file is their model: the
// types, the errors, the limits and the rules of every scope, and the Store
// interface that both backends implement and every consumer uses. SQLite
// (Open, sqlite.go) is the default, for one process; Redis (OpenRedis,
// redis.go) serves several instances. The handlers keep the browser scope
// (in the cookie) and the client scope (in memory) by the same rules.
//
// It is the only package that knows SQL or Redis.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Store is the persistent storage of the general, user and tab scopes. Both
// backends keep these semantics, and one conformance suite runs against
// both (conformance_test.go).
//
// Errors a caller can act on: ErrNotFound (no such key), ErrTooManyKeys (an
// owner at Limits.KeysPerOwner), ErrTabExists (CopyTab onto a tab that has
// rows), ErrClosed (after Close), *InvalidError (a key or a value that
// breaks a rule of Limits) and *ConflictError (a key whose version is not
// the one named). A write that returns one of them wrote nothing. Any other
// error is the storage failing.
type Store interface {
	// List returns every key of o, sorted by key, with the version of the
	// moment they were read.
	List(ctx context.Context, o Owner) (Snapshot, error)
	// View returns what w shows of o (see Snapshot.View), read as List
	// reads: a page is sized by what it shows, not by what o holds.
	View(ctx context.Context, o Owner, w Window) (View, error)
	// Get returns one key of o.
	Get(ctx context.Context, o Owner, key string) (Entry, error)
	// Apply runs sets and increments as one write, all or nothing, and
	// returns the new entries in order. Each key appears once, and one Apply
	// takes at most MaxMutations. Values must be JSON (see Limits.ParseValue).
	// The origin is kept with each value and reported with each change; its
	// tab is numbered (and made known) if it is new. A mutation whose
	// IfVersion does not hold refuses the whole Apply with a *ConflictError.
	Apply(ctx context.Context, origin Origin, muts ...Mutation) ([]Entry, error)
	// Delete removes one key of o and returns the delete's version;
	// ifVersion, unless 0, must be the key's version.
	Delete(ctx context.Context, o Owner, key string, origin Origin, ifVersion int64) (int64, error)
	// Clear removes every key of o and returns how many there were and the
	// clear's version (0 when there were none: nothing changed).
	Clear(ctx context.Context, o Owner, origin Origin) (n int, version int64, err error)
	// CopyTab copies every key of one tab of userID to a new tab that holds
	// none (a duplicated browser tab, which gets the next number unless it
	// has one already); the two are independent from then on.
	CopyTab(ctx context.Context, userID, fromTab, toTab string) error
	// TabNumber is the number of a tab in its browser ("Tab 3"), given the
	// first time the tab is seen, in the order tabs appear, and never given
	// again while the user exists.
	TabNumber(ctx context.Context, userID, tabID string) (int, error)
	// Touch records that a user (and a tab, if tabID is set) was seen, at
	// most once per hour each, or at once the first time the user's cookie
	// comes back (returning), which keeps the user beyond the one-shot grace.
	Touch(ctx context.Context, userID, tabID string, returning bool) error
	// SharePresence tells every instance which pages this one has open and
	// returns the pages open on all of them. SQLite serves one instance:
	// mine is everything. Redis keeps each instance's share for a while, so
	// one that dies stops counting, and reports a change of someone else's
	// share as a Change with OpPresence.
	SharePresence(ctx context.Context, mine Presence) (Presence, error)
	// Subscribe sets the function told of every committed change, in
	// commit order, from this process or (Redis) any other. It must not
	// block.
	Subscribe(fn func([]Change))
	// Announce tells the subscribers of a change the store does not keep
	// (the browser scope, which lives in the cookie).
	Announce(ctx context.Context, c Change) error
	// Secret returns the server secret kept with the data, generating it
	// the first time (generated says so).
	Secret(ctx context.Context) (secret string, generated bool, err error)
	// Boot is this start's number (counted with the data) and time.
	Boot() Boot
	// Health is nil while writes succeed, else the fault they meet now
	// (ErrUnavailable, ErrDiskFull, ErrLocked). SQLite's faults are learnt
	// from writes: a disk that filled shows until the next write succeeds.
	Health(ctx context.Context) error
	// Close finishes the writes under way and closes the storage.
	Close() error
}

// Both backends keep the contract.
var (
	_ Store = (*SQLite)(nil)
	_ Store = (*Redis)(nil)
)

// Scope names a storage scope.
type Scope string

// The scopes. A Store keeps General, User and Tab; the handlers keep
// Browser (in the cookie) and Client (in memory).
const (
	General Scope = "general"
	User    Scope = "user"
	Tab     Scope = "tab"
	Browser Scope = "browser"
	Client  Scope = "client"
)

// Owner is one dictionary: the general space, one user's, or one tab of one
// user. A tab is always keyed by its user too, so a tab id alone never
// reaches another browser's rows.
type Owner struct {
	Scope  Scope
	UserID string // user and tab scopes
	TabID  string // tab scope
}

// GeneralOwner is the one owner of the general scope.
var GeneralOwner = Owner{Scope: General}

// UserOwner returns the owner of one user's scope.
func UserOwner(userID string) Owner { return Owner{Scope: User, UserID: userID} }

// TabOwner returns the owner of one tab's scope.
func TabOwner(userID, tabID string) Owner { return Owner{Scope: Tab, UserID: userID, TabID: tabID} }

func (o Owner) String() string {
	switch o.Scope {
	case User:
		return "user/" + o.UserID
	case Tab:
		return "tab/" + o.UserID + "/" + o.TabID
	}
	return string(o.Scope)
}

// Entry is one stored key.
type Entry struct {
	Key       string
	Value     json.RawMessage // compact JSON
	Version   int64
	UpdatedAt time.Time
	Origin    Origin // who changed it last (UserID, Tab, API)
}

// Origin is who made a change: a page of one browser (its user, and the
// number of its tab in that browser), or the JSON API. It is kept with the
// value; who sees it is told only what is theirs to know (the handlers say
// "by this tab", "by Tab 3", "by another browser", "through the API").
type Origin struct {
	UserID string // the browser whose request made it; "" when not known (data older than provenance)
	TabID  string // the tab whose page made it, as the request names it; Apply numbers it into Tab
	Tab    int    // that tab's number in its browser; 0 through the API or when not known
	API    bool   // through the JSON API
	// ClientID is the page load that made it. It is not kept: it only spares
	// that page the echo of its own change.
	ClientID string
}

// kept is the origin as a value keeps it.
func (o Origin) kept() Origin { return Origin{UserID: o.UserID, Tab: o.Tab, API: o.API} }

// Presence is who has a page open now: per user, the numbers of its tabs
// with a live page, sorted.
type Presence map[string][]int

// Add puts other's pages into p (a tab open on two instances counts once).
func (p Presence) Add(other Presence) {
	for user, tabs := range other {
		merged := append(slices.Clone(p[user]), tabs...)
		slices.Sort(merged)
		p[user] = slices.Compact(merged)
	}
}

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
// (static/app.js, matches), to place a pushed key.
func Matches(key, filter string) bool { return matches(key, strings.ToLower(filter)) }

// matches is Matches with the filter in lower case already.
func matches(key, lower string) bool {
	return lower == "" || strings.Contains(strings.ToLower(key), lower)
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
		filter := strings.ToLower(w.Filter)
		from := 0
		if w.After != "" {
			i, found := search(s.Entries, w.After)
			from = i
			if found {
				from++
			}
		}
		for _, e := range s.Entries[from:] {
			if !matches(e.Key, filter) {
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

// Mutation is one set or increment of an Apply.
type Mutation struct {
	Owner     Owner
	Key       string
	Value     json.RawMessage // for a set
	Increment bool            // count up instead (see NextCount)
	// IfVersion, unless 0, is the version the key must have, or Absent if
	// it must not exist: a change based on what someone else has changed
	// since is refused, not lost.
	IfVersion int64
}

// Absent is the IfVersion of a key that must not exist yet.
const Absent int64 = -1

// Op says what a Change did.
type Op string

// The kinds of change.
const (
	OpSet    Op = "set"
	OpDelete Op = "delete"
	OpClear  Op = "clear"
	// OpResync says changes may have been missed (a lost subscription):
	// whoever shows stored values should read them all again.
	OpResync Op = "resync"
	// OpPresence says another instance's pages changed (see SharePresence).
	OpPresence Op = "presence"
)

// Change is one committed change, as Subscribe reports it.
type Change struct {
	Owner   Owner
	Op      Op
	Key     string          // empty for OpClear
	Value   json.RawMessage // the new value for OpSet
	Version int64
	At      int64 // unix milliseconds of the commit
	Origin  Origin
}

// entry is the key a set reports, as it is stored now.
func (c Change) entry() Entry {
	return Entry{Key: c.Key, Value: c.Value, Version: c.Version, UpdatedAt: time.UnixMilli(c.At), Origin: c.Origin.kept()}
}

// Boot describes this start of the server.
type Boot struct {
	Number int64     // how many times a server has started on this data
	Time   time.Time // when this start happened
}

// Errors a caller can act on; compare with errors.Is.
var (
	ErrNotFound    = errors.New("store: key not found")
	ErrTooManyKeys = errors.New("store: too many keys")
	ErrTabExists   = errors.New("store: tab already exists")
	ErrClosed      = errors.New("store: closed")
)

// Faults: the storage cannot do what was asked right now, and nothing was
// changed. Each passes by itself (space is freed, Redis comes back, the
// other process lets go), and the same request then succeeds.
var (
	ErrUnavailable = errors.New("store: storage unavailable")
	ErrDiskFull    = errors.New("store: disk full")
	ErrLocked      = errors.New("store: database locked by another process")
)

// FaultOf returns the fault err is (ErrUnavailable, ErrDiskFull or
// ErrLocked), or nil.
func FaultOf(err error) error {
	for _, f := range []error{ErrUnavailable, ErrDiskFull, ErrLocked} {
		if errors.Is(err, f) {
			return f
		}
	}
	return nil
}

// InvalidError is a key or a value that breaks a rule of Limits. Its
// message says which, in words fit to show the person who sent it.
type InvalidError struct {
	Message  string
	TooLarge bool // the value is larger than Limits.ValueBytes
}

func (e *InvalidError) Error() string { return e.Message }

func invalid(format string, args ...any) error {
	return &InvalidError{Message: fmt.Sprintf(format, args...)}
}

// ErrConflict is what a *ConflictError is; compare with errors.Is.
var ErrConflict = errors.New("store: the key changed")

// ConflictError is a write refused because a key's version was not the one
// its caller named: someone changed it first. Current is the key as it is
// now (Version 0: it does not exist).
type ConflictError struct{ Current Entry }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("store: %s changed (now version %d)", e.Current.Key, e.Current.Version)
}

func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// CheckVersion refuses a change of key, now current (Version 0 if absent),
// when ifVersion, unless 0, says otherwise.
func CheckVersion(key string, current Entry, ifVersion int64) error {
	switch {
	case ifVersion == 0:
		return nil
	case ifVersion == Absent && current.Version == 0, ifVersion == current.Version:
		return nil
	}
	current.Key = key
	return &ConflictError{Current: current}
}

// Limits bound what one owner may keep and one request may send. A zero
// field takes its value from DefaultLimits.
type Limits struct {
	KeyRunes       int // characters in a key
	ValueBytes     int // bytes of one JSON value
	JSONDepth      int // nesting of arrays and objects in a value
	KeysPerOwner   int // keys of one scope owner, in every scope
	TabsPerUser    int // tabs with stored keys per user; a new one evicts the least recently used
	ClientsPerUser int // client (page-load) scopes per user; likewise
	BodyBytes      int // bytes of one request body
}

// DefaultLimits are the limits of PRODUCT.md.
var DefaultLimits = Limits{KeyRunes: 128, ValueBytes: 16 << 10, JSONDepth: 32, KeysPerOwner: 1000,
	TabsPerUser: 100, ClientsPerUser: 100, BodyBytes: 64 << 10}

// WithDefaults fills in the zero fields.
func (l Limits) WithDefaults() Limits {
	for _, f := range []struct{ v, def *int }{
		{&l.KeyRunes, &DefaultLimits.KeyRunes}, {&l.ValueBytes, &DefaultLimits.ValueBytes},
		{&l.JSONDepth, &DefaultLimits.JSONDepth}, {&l.KeysPerOwner, &DefaultLimits.KeysPerOwner},
		{&l.TabsPerUser, &DefaultLimits.TabsPerUser}, {&l.ClientsPerUser, &DefaultLimits.ClientsPerUser},
		{&l.BodyBytes, &DefaultLimits.BodyBytes},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return l
}

// MaxMutations bounds one Apply (SQLite reads its keys in one statement).
const MaxMutations = 64

// Check refuses mutations that no scope may take: too many for one write,
// a key named twice, a key that breaks CheckKey or a value over the size.
// Both backends check each Apply before it is queued (it is the caller's
// mistake, not the batch's); the handlers' own dictionaries check each
// change.
func (l Limits) Check(muts ...Mutation) error {
	if len(muts) == 0 || len(muts) > MaxMutations {
		return fmt.Errorf("store: apply: %d mutations, want 1 to %d", len(muts), MaxMutations)
	}
	for i, m := range muts {
		for _, earlier := range muts[:i] {
			if earlier.Owner == m.Owner && earlier.Key == m.Key {
				return fmt.Errorf("store: apply: %s/%s named twice", m.Owner, m.Key)
			}
		}
		if err := l.CheckKey(m.Key); err != nil {
			return err
		}
		if !m.Increment {
			if err := l.CheckSize(m.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckKey accepts 1 to KeyRunes printable characters. A key must also be
// usable as one URL path segment, so "/" and the names "." and ".." are
// refused.
func (l Limits) CheckKey(key string) error {
	switch {
	case key == "":
		return invalid("key is empty")
	case !utf8.ValidString(key):
		return invalid("key is not valid UTF-8")
	case utf8.RuneCountInString(key) > l.KeyRunes:
		return invalid("key is longer than %d characters", l.KeyRunes)
	case key == "." || key == "..":
		return invalid(`key may not be "." or ".."`)
	case strings.ContainsRune(key, '/'):
		return invalid(`key may not contain "/"`)
	}
	for _, r := range key {
		if !unicode.IsPrint(r) {
			return invalid("key has a control or non-printable character")
		}
	}
	return nil
}

// CheckSize refuses a value larger than ValueBytes.
func (l Limits) CheckSize(v []byte) error {
	if len(v) > l.ValueBytes {
		return &InvalidError{Message: fmt.Sprintf("value is larger than %d bytes", l.ValueBytes), TooLarge: true}
	}
	return nil
}

// ParseValue checks that b is one JSON value within the limits and returns
// it compacted. Beyond json.Valid it refuses invalid UTF-8, duplicate object
// keys, numbers that do not fit a float64 and nesting deeper than
// JSONDepth, so that every stored value means one thing to every reader.
func (l Limits) ParseValue(b []byte) (json.RawMessage, error) {
	if err := l.CheckSize(b); err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, invalid("value is not valid UTF-8")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, invalid(`value is empty: send a JSON value, e.g. "text", 1, true, null, [] or {}`)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := checkJSON(dec, 0, l.JSONDepth); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("value is not one JSON value: unexpected data after it")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, invalid("value is not valid JSON")
	}
	return out.Bytes(), nil
}

// checkJSON walks one JSON value from dec.
func checkJSON(dec *json.Decoder, depth, maxDepth int) error {
	tok, err := dec.Token()
	if err != nil {
		return invalid("value is not valid JSON")
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth+1 > maxDepth {
			return invalid("value is nested deeper than %d levels", maxDepth)
		}
		seen := map[string]bool{} // of an object's keys
		for dec.More() {
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return invalid("value is not valid JSON")
				}
				key := k.(string)
				if seen[key] {
					return invalid("value has the object key %q twice", key)
				}
				seen[key] = true
			}
			if err := checkJSON(dec, depth+1, maxDepth); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return invalid("value is not valid JSON")
		}
	case json.Number:
		if _, err := strconv.ParseFloat(string(t), 64); err != nil {
			return invalid("value has a number beyond the range of a 64-bit float")
		}
	}
	return nil
}

// NextCount is what an increment stores after v: an integer counts up;
// anything else (no value, not an integer, or the largest one) starts again
// at 1. Every scope counts this way; the Redis scripts do it on the digits
// (lua/prelude.lua), and the conformance suite holds the two together at the
// edges.
func NextCount(v json.RawMessage) json.RawMessage {
	if n, err := strconv.ParseInt(string(v), 10, 64); err == nil && n < math.MaxInt64 {
		return strconv.AppendInt(nil, n+1, 10)
	}
	return json.RawMessage("1")
}
