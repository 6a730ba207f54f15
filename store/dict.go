package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Dict is one scope owner's dictionary: what a program holds to read and
// write a scope, the seed's app.storage.user in Go. Every scope offers it,
// each by the same rules: the stored scopes (NewDict, SQLite or Redis), a
// page load's memory (Clients.Dict) and the browser's cookie (package
// scopes). One conformance suite runs against all of them.
//
// Values are anything encoding/json encodes; a json.RawMessage is taken as
// the JSON it is (checked, see Limits.Encode). A change keeps who made it.
// The errors are Store's: ErrNotFound, ErrTooManyKeys (ErrScopeFull for a
// scope bounded by bytes, the cookie), *InvalidError, *ConflictError, and
// the faults.
type Dict interface {
	// Get returns one key, or ErrNotFound.
	Get(ctx context.Context, key string) (Entry, error)
	// Set stores value under key.
	Set(ctx context.Context, key string, value any) (Entry, error)
	// SetIf stores value under key only if the key is at version (Absent:
	// only if it does not exist), else it is a *ConflictError: a change
	// based on what someone else has changed since is refused, not lost.
	SetIf(ctx context.Context, key string, value any, version int64) (Entry, error)
	// Increment counts the value under key up by one, atomically (see
	// NextCount).
	Increment(ctx context.Context, key string) (Entry, error)
	// Delete removes key and returns the delete's version, or ErrNotFound.
	Delete(ctx context.Context, key string) (int64, error)
	// DeleteIf is Delete only if the key is at version (0: any).
	DeleteIf(ctx context.Context, key string, version int64) (int64, error)
	// Clear removes every key and returns how many there were and the
	// clear's version.
	Clear(ctx context.Context) (n int, version int64, err error)
	// List returns every key, sorted, with the version of the moment.
	List(ctx context.Context) (Snapshot, error)
	// View returns what w shows of the keys (see Snapshot.View).
	View(ctx context.Context, w Window) (View, error)
}

// ErrScopeFull is a change that a scope bounded by its size in bytes (the
// cookie's, about 4 KiB in all) cannot take; it wrote nothing.
var ErrScopeFull = errors.New("store: the scope is full")

// ErrWrongType is a value that does not decode into the type Get asked for.
var ErrWrongType = errors.New("store: the value is of another type")

// Get reads key of d as a T, or def when the key is not set (or holds
// null): the seed's app.storage.user.get('font_size', 16) is
// store.Get(ctx, user, "font_size", 16).
func Get[T any](ctx context.Context, d Dict, key string, def T) (T, error) {
	e, err := d.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return def, nil
	}
	if err != nil {
		return def, err
	}
	if string(e.Value) == "null" {
		return def, nil
	}
	var v T
	if err := json.Unmarshal(e.Value, &v); err != nil {
		return def, fmt.Errorf("%w: %s is %s, not a %T", ErrWrongType, key, e.Value, v)
	}
	return v, nil
}

// Has says whether d holds key (the seed's 'dark_mode' in app.storage.user).
func Has(ctx context.Context, d Dict, key string) (bool, error) {
	_, err := d.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Keys are d's keys, sorted.
func Keys(ctx context.Context, d Dict) ([]string, error) {
	snap, err := d.List(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(snap.Entries))
	for i, e := range snap.Entries {
		keys[i] = e.Key
	}
	return keys, nil
}

// Encode is v as a stored value, within l: a json.RawMessage is checked as
// ParseValue checks what the API is sent; a string, a number or a bool
// need only their size checked; anything else is encoded, then checked.
// <, > and & stay as they are.
func (l Limits) Encode(v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok {
		return l.ParseValue(raw)
	}
	b, err := Marshal(v)
	if err != nil {
		return nil, &InvalidError{Message: "value cannot be stored as JSON: " + err.Error()}
	}
	switch v.(type) {
	case string, bool, int, int64, float64:
		return b, l.CheckSize(b)
	}
	return l.ParseValue(b)
}

// Marshal is json.Marshal without the escaping of <, > and & (a value is
// kept as typed; the views escape for HTML).
func Marshal(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// NewDict is o's dictionary in st, changed as by.
func NewDict(st Store, o Owner, by Origin) Dict {
	return storedDict{st: st, owner: o, by: by}
}

// storedDict is one owner of a Store.
type storedDict struct {
	st    Store
	owner Owner
	by    Origin
}

func (d storedDict) Get(ctx context.Context, key string) (Entry, error) {
	return d.st.Get(ctx, d.owner, key)
}
func (d storedDict) Set(ctx context.Context, key string, v any) (Entry, error) {
	return d.SetIf(ctx, key, v, 0)
}
func (d storedDict) SetIf(ctx context.Context, key string, v any, version int64) (Entry, error) {
	raw, err := d.st.Limits().Encode(v)
	if err != nil {
		return Entry{}, err
	}
	return d.apply(ctx, Mutation{Owner: d.owner, Key: key, Value: raw, IfVersion: version})
}
func (d storedDict) Increment(ctx context.Context, key string) (Entry, error) {
	return d.apply(ctx, Mutation{Owner: d.owner, Key: key, Increment: true})
}
func (d storedDict) apply(ctx context.Context, m Mutation) (Entry, error) {
	entries, err := d.st.Apply(ctx, d.by, m)
	if err != nil {
		return Entry{}, err
	}
	return entries[0], nil
}
func (d storedDict) Delete(ctx context.Context, key string) (int64, error) {
	return d.DeleteIf(ctx, key, 0)
}
func (d storedDict) DeleteIf(ctx context.Context, key string, version int64) (int64, error) {
	return d.st.Delete(ctx, d.owner, key, d.by, version)
}
func (d storedDict) Clear(ctx context.Context) (int, int64, error) {
	return d.st.Clear(ctx, d.owner, d.by)
}
func (d storedDict) List(ctx context.Context) (Snapshot, error) { return d.st.List(ctx, d.owner) }
func (d storedDict) View(ctx context.Context, w Window) (View, error) {
	return d.st.View(ctx, d.owner, w)
}

// MemKeeper keeps one MemDict: it hands it to a change under whatever lock
// or copy-on-write the keeper needs, with the limits it keeps to, and
// saves what the change made (the client scope in memory, the browser
// scope in the cookie).
type MemKeeper interface {
	// Read runs f on the dictionary as it is.
	Read(f func(m *MemDict))
	// Change runs f on the dictionary to change it and keeps what f made;
	// f's error leaves it as it was. f returns the change it made (its op,
	// key, version, time and origin), for a keeper that announces it.
	Change(f func(m *MemDict, l Limits) (Change, error)) error
}

// NewMemDict is the dictionary a MemKeeper keeps, of the browser of by,
// changed as by.
func NewMemDict(k MemKeeper, by Origin) Dict { return memDict{k: k, by: by} }

type memDict struct {
	k  MemKeeper
	by Origin
}

func (d memDict) Get(_ context.Context, key string) (e Entry, err error) {
	d.k.Read(func(m *MemDict) { e, err = m.Get(d.by.UserID, key) })
	return e, err
}
func (d memDict) Set(ctx context.Context, key string, v any) (Entry, error) {
	return d.SetIf(ctx, key, v, 0)
}
func (d memDict) SetIf(_ context.Context, key string, v any, version int64) (e Entry, err error) {
	err = d.k.Change(func(m *MemDict, l Limits) (Change, error) {
		raw, err := l.Encode(v)
		if err != nil {
			return Change{}, err
		}
		if e, err = m.Set(key, raw, version, d.by, l, time.Now()); err != nil {
			return Change{}, err
		}
		return d.change(OpSet, key, e.Version), nil
	})
	return e, err
}
func (d memDict) Increment(_ context.Context, key string) (e Entry, err error) {
	err = d.k.Change(func(m *MemDict, l Limits) (Change, error) {
		if e, err = m.Increment(key, d.by, l, time.Now()); err != nil {
			return Change{}, err
		}
		return d.change(OpSet, key, e.Version), nil
	})
	return e, err
}
func (d memDict) Delete(ctx context.Context, key string) (int64, error) {
	return d.DeleteIf(ctx, key, 0)
}
func (d memDict) DeleteIf(_ context.Context, key string, version int64) (v int64, err error) {
	err = d.k.Change(func(m *MemDict, _ Limits) (Change, error) {
		if v, err = m.Delete(d.by.UserID, key, version); err != nil {
			return Change{}, err
		}
		return d.change(OpDelete, key, v), nil
	})
	return v, err
}
func (d memDict) Clear(context.Context) (n int, v int64, err error) {
	err = d.k.Change(func(m *MemDict, _ Limits) (Change, error) {
		n, v = m.Clear()
		return d.change(OpClear, "", v), nil
	})
	return n, v, err
}
func (d memDict) List(context.Context) (snap Snapshot, err error) {
	d.k.Read(func(m *MemDict) { snap = m.List(d.by.UserID) })
	return snap, nil
}
func (d memDict) View(ctx context.Context, w Window) (View, error) {
	snap, err := d.List(ctx)
	return snap.View(w), err
}

// change is a change of the dictionary by d.by, as its keeper announces it.
func (d memDict) change(op Op, key string, version int64) Change {
	return Change{Op: op, Key: key, Version: version, At: time.Now().UnixMilli(), Origin: d.by}
}
