package store

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
)

// MemDict is one owner's dictionary kept outside the stores, by the same
// rules (Limits, CheckVersion, NextCount): the browser scope (inside the
// cookie) and the client scope (in the server's memory, see Clients). The
// browser it belongs to made every change in it, so an entry keeps only
// which tab, or the API. Its JSON form is short, for the cookie. It is not
// safe for concurrent use.
type MemDict struct {
	Seq     int64               `json:"s"` // the last version handed out; every change takes a new one
	Entries map[string]memEntry `json:"e"`
}

// memEntry is one key of a MemDict.
type memEntry struct {
	V   json.RawMessage `json:"v"`
	Ver int64           `json:"n"`
	At  int64           `json:"t"` // unix milliseconds
	Tab int             `json:"b,omitempty"`
	API bool            `json:"a,omitempty"`
}

// Clone is a copy of m to change, leaving m as it is.
func (m *MemDict) Clone() *MemDict {
	return &MemDict{Seq: m.Seq, Entries: maps.Clone(m.Entries)}
}

func (m *MemDict) entry(user, key string, e memEntry) Entry {
	return Entry{Key: key, Value: e.V, Version: e.Ver, UpdatedAt: time.UnixMilli(e.At),
		Origin: Origin{UserID: user, Tab: e.Tab, API: e.API}}
}

// List is the dictionary, whose browser is user, as a snapshot.
func (m *MemDict) List(user string) Snapshot {
	entries := make([]Entry, 0, len(m.Entries))
	for k, e := range m.Entries {
		entries = append(entries, m.entry(user, k, e))
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	return Snapshot{Entries: entries, Version: m.Seq}
}

// Get returns one key, or ErrNotFound.
func (m *MemDict) Get(user, key string) (Entry, error) {
	e, ok := m.Entries[key]
	if !ok {
		return Entry{}, ErrNotFound
	}
	return m.entry(user, key, e), nil
}

// Set stores v under key as by's change at now, refusing what l refuses, a
// new key beyond l.KeysPerOwner and a change based on another version
// (ifVersion, as in Mutation).
func (m *MemDict) Set(key string, v json.RawMessage, ifVersion int64, by Origin, l Limits, now time.Time) (Entry, error) {
	if err := l.Check(Mutation{Key: key, Value: v}); err != nil {
		return Entry{}, err
	}
	old, exists := m.Entries[key]
	var current Entry
	if exists {
		current = m.entry(by.UserID, key, old)
	}
	if err := CheckVersion(key, current, ifVersion); err != nil {
		return Entry{}, err
	}
	if !exists && len(m.Entries) >= l.KeysPerOwner {
		return Entry{}, ErrTooManyKeys
	}
	if m.Entries == nil {
		m.Entries = map[string]memEntry{}
	}
	m.Seq++
	e := memEntry{V: v, Ver: m.Seq, At: now.UnixMilli(), Tab: by.Tab, API: by.API}
	m.Entries[key] = e
	stored := m.entry(by.UserID, key, e)
	stored.Created = !exists
	return stored, nil
}

// Increment counts up the value under key, by NextCount.
func (m *MemDict) Increment(key string, by Origin, l Limits, now time.Time) (Entry, error) {
	return m.Set(key, NextCount(m.Entries[key].V), 0, by, l, now)
}

// Delete removes key and returns the delete's version; ifVersion, unless
// 0, must be the key's version.
func (m *MemDict) Delete(user, key string, ifVersion int64) (int64, error) {
	e, ok := m.Entries[key]
	if !ok {
		return 0, ErrNotFound
	}
	if err := CheckVersion(key, m.entry(user, key, e), ifVersion); err != nil {
		return 0, err
	}
	delete(m.Entries, key)
	m.Seq++
	return m.Seq, nil
}

// Clear removes every key and returns how many there were and the clear's
// version.
func (m *MemDict) Clear() (int, int64) {
	n := len(m.Entries)
	clear(m.Entries)
	m.Seq++
	return n, m.Seq
}
