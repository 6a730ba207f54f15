// Package store keeps the storage scopes. This file is their model: the
// types and the errors of every scope, and the Store interface that both
// backends implement and every consumer uses; limits.go holds the limits
// and the rules of keys and values, view.go what a page is shown of an
// owner. SQLite (Open, sqlite.go) is the default, for one process; Redis
// (OpenRedis, redis.go) serves several instances. Every scope is a Dict
// (dict.go): an owner of a Store, a page load's memory (Clients) and the
// cookie (package scopes) keep the same rules.
//
// It is the only package that knows SQL or Redis.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Store is the persistent storage of the general, user and tab scopes, one
// interface per role (a consumer that needs less declares its own, as the
// live hub does). Both backends keep these semantics, and one conformance
// suite runs against both (conformance_test.go).
//
// Errors a caller can act on: ErrNotFound (no such key), ErrTooManyKeys (an
// owner at Limits.KeysPerOwner), ErrTabExists (CopyTab onto a tab that has
// rows), ErrClosed (after Close), *InvalidError (a key or a value that
// breaks a rule of Limits) and *ConflictError (a key whose version is not
// the one named). A write that returns one of them wrote nothing. Any other
// error is the storage failing.
type Store interface {
	Entries
	Tabs
	Stream
	Lifecycle
}

// Entries are the owners' keys: read, written, counted, deleted.
type Entries interface {
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
}

// Tabs are the browsers' tabs: numbered, copied when duplicated, kept while
// in use.
type Tabs interface {
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
	// TouchDue reports, without waiting, whether Touch would write for these
	// arguments now: most requests have nothing to touch, and a caller that
	// asks first hands nothing over for them.
	TouchDue(userID, tabID string, returning bool) bool
}

// Stream tells every instance what changed and who has pages open.
type Stream interface {
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
}

// Lifecycle is the storage itself: its secret, this start, its health, its
// end.
type Lifecycle interface {
	// Secret returns the server secret kept with the data, generating it
	// the first time (generated says so).
	Secret(ctx context.Context) (secret string, generated bool, err error)
	// Boot is this start's number (counted with the data) and time.
	Boot() Boot
	// Limits are the limits the storage keeps to.
	Limits() Limits
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

// The scopes. A Store keeps General, User and Tab; package scopes keeps
// Browser (in the cookie), and Clients keeps Client (in memory).
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
	// Created says the write that returned it made the key (it did not
	// exist before); not kept.
	Created bool
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

// ErrNoReplica is a write that fewer replicas confirmed than
// Options.Redis.Wait asks for, in time. Unlike the other faults it may have
// changed something: the primary has the write, and keeps it unless it
// fails before a replica has it too. It passes once the replicas are back.
var ErrNoReplica = errors.New("store: too few replicas confirmed the write")

// FaultOf returns the fault err is (ErrUnavailable, ErrDiskFull, ErrLocked
// or ErrNoReplica), or nil.
func FaultOf(err error) error {
	for _, f := range []error{ErrUnavailable, ErrDiskFull, ErrLocked, ErrNoReplica} {
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
