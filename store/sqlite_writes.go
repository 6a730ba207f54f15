package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// Apply runs several sets and increments as one write, all or nothing, and
// returns the new entries in order: a page view counts its visits in three
// places for the cost of one.
func (s *SQLite) Apply(ctx context.Context, origin Origin, muts ...Mutation) ([]Entry, error) {
	if err := s.limits.Check(muts...); err != nil {
		return nil, err
	}
	entries := make([]Entry, len(muts))
	err := s.write(ctx, origin, func(t *writeTx) error {
		if len(muts) == 1 && !muts[0].Increment {
			e, err := t.set(muts[0])
			entries[0] = e
			return err
		}
		return t.applyAll(muts, entries)
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// updateEntry writes a key's value and origin, if the key exists (and,
// with a version given, has that version).
const updateEntry = `
	UPDATE entries SET value = ?, version = ?, updated_at = ?, origin_user = ?, origin_tab = ?, origin_api = ?
	WHERE scope = ? AND user_id = ? AND tab_id = ? AND key = ?`

const updateEntryIf = updateEntry + ` AND version = ?`

// set stores one value: an update if the key exists (one statement), else
// a room check and an insert. A refusal comes before anything is written.
// A set with IfVersion costs nothing more while the version holds.
func (t *writeTx) set(m Mutation) (Entry, error) {
	v := t.nextVersion()
	o := t.origin
	var res sql.Result
	var err error
	switch m.IfVersion {
	case Absent: // insert or refuse
	case 0:
		res, err = t.exec(updateEntry, string(m.Value), v, t.now, o.UserID, o.Tab, o.API, m.Owner.Scope, m.Owner.UserID, m.Owner.TabID, m.Key)
	default:
		res, err = t.exec(updateEntryIf, string(m.Value), v, t.now, o.UserID, o.Tab, o.API, m.Owner.Scope, m.Owner.UserID, m.Owner.TabID, m.Key, m.IfVersion)
	}
	if err != nil {
		return Entry{}, err
	}
	if res != nil {
		if n, _ := res.RowsAffected(); n > 0 {
			if err := t.ensureOwner(m.Owner); err != nil {
				return Entry{}, err
			}
			return t.recordSet(m, m.Value, v), nil
		}
	}
	if m.IfVersion != 0 { // the key is not as named, or it is new: which?
		current, _, err := getEntry(t.ctx, t.tx, m.Owner, m.Key)
		if err != nil {
			return Entry{}, err
		}
		if err := CheckVersion(m.Key, current, m.IfVersion); err != nil {
			return Entry{}, err
		}
	}
	// A new key.
	if err := t.checkRoom(m.Owner, 1); err != nil {
		return Entry{}, err
	}
	return t.insert(m, m.Value, v)
}

// applyAll learns every key's current value first, so that every refusal
// comes before the first write and each increment knows its new value;
// then it writes. What the writer wrote itself it knows already (see
// knownValues), unless a version is to be checked; the rest it reads in one
// statement, not one per key.
func (t *writeTx) applyAll(muts []Mutation, out []Entry) error {
	current := make([]Entry, len(muts)) // Value nil: no such key
	var unknown []int
	for i, m := range muts {
		if v, ok := t.w.known.get(m.Owner, m.Key); ok && m.IfVersion == 0 {
			current[i].Value = v
		} else {
			unknown = append(unknown, i)
		}
	}
	if err := t.lookup(muts, unknown, current); err != nil {
		return err
	}
	added := map[Owner]int{}
	for i, m := range muts {
		if m.IfVersion != 0 {
			if err := CheckVersion(m.Key, current[i], m.IfVersion); err != nil {
				if e, found, gerr := getEntry(t.ctx, t.tx, m.Owner, m.Key); gerr == nil && found {
					err.(*ConflictError).Current = e // the whole key, for the refusal
				}
				return err
			}
		}
		if current[i].Value == nil {
			added[m.Owner]++
		}
	}
	for o, n := range added {
		if err := t.checkRoom(o, n); err != nil {
			return err // nothing written yet
		}
	}
	for i, m := range muts {
		value := m.Value
		if m.Increment {
			value = NextCount(current[i].Value)
		}
		var err error
		if current[i].Value != nil {
			out[i], err = t.update(m, value, t.nextVersion())
		} else {
			out[i], err = t.insert(m, value, t.nextVersion())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// lookup reads into current[i] the stored value and version of muts[i],
// for each i in which, in one statement: a point lookup per key, each
// answering with its index if the key exists (current[i] stays empty if
// not).
func (t *writeTx) lookup(muts []Mutation, which []int, current []Entry) error {
	if len(which) == 0 {
		return nil
	}
	var q strings.Builder
	args := make([]any, 0, 5*len(which))
	for n, i := range which {
		if n > 0 {
			q.WriteString(" UNION ALL ")
		}
		q.WriteString(`SELECT ?, value, version FROM entries WHERE scope = ? AND user_id = ? AND tab_id = ? AND key = ?`)
		m := muts[i]
		args = append(args, i, m.Owner.Scope, m.Owner.UserID, m.Owner.TabID, m.Key)
	}
	rows, err := t.query(q.String(), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		var v string
		var version int64
		if err := rows.Scan(&i, &v, &version); err != nil {
			return err
		}
		current[i].Value, current[i].Version = json.RawMessage(v), version
	}
	return rows.Err()
}

// update writes value to a key known to exist.
func (t *writeTx) update(m Mutation, value json.RawMessage, version int64) (Entry, error) {
	if err := t.ensureOwner(m.Owner); err != nil {
		return Entry{}, err
	}
	o := t.origin
	if _, err := t.exec(updateEntry, string(value), version, t.now, o.UserID, o.Tab, o.API,
		m.Owner.Scope, m.Owner.UserID, m.Owner.TabID, m.Key); err != nil {
		return Entry{}, err
	}
	return t.recordSet(m, value, version), nil
}

// insert writes a new key; the caller has checked the room.
func (t *writeTx) insert(m Mutation, value json.RawMessage, version int64) (Entry, error) {
	if err := t.ensureOwner(m.Owner); err != nil {
		return Entry{}, err
	}
	o := t.origin
	if _, err := t.exec(`
		INSERT INTO entries (scope, user_id, tab_id, key, value, version, updated_at, origin_user, origin_tab, origin_api)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.Owner.Scope, m.Owner.UserID, m.Owner.TabID, m.Key, string(value), version, t.now, o.UserID, o.Tab, o.API); err != nil {
		return Entry{}, err
	}
	e := t.recordSet(m, value, version)
	e.Created = true
	return e, nil
}

// recordSet reports a key's new value and returns it as stored.
func (t *writeTx) recordSet(m Mutation, value json.RawMessage, version int64) Entry {
	c := t.record(Change{Owner: m.Owner, Op: OpSet, Key: m.Key, Value: value, Version: version})
	return c.entry()
}

// Delete removes key from owner, or returns ErrNotFound; with ifVersion,
// only at that version.
func (s *SQLite) Delete(ctx context.Context, o Owner, key string, origin Origin, ifVersion int64) (int64, error) {
	var version int64
	err := s.write(ctx, origin, func(t *writeTx) error {
		current, found, err := getEntry(t.ctx, t.tx, o, key)
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		if err := CheckVersion(key, current, ifVersion); err != nil {
			return err
		}
		if _, err := t.exec(`
			DELETE FROM entries WHERE scope = ? AND user_id = ? AND tab_id = ? AND key = ?`,
			o.Scope, o.UserID, o.TabID, key); err != nil {
			return err
		}
		version = t.nextVersion()
		t.record(Change{Owner: o, Op: OpDelete, Key: key, Version: version})
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete %s/%s: %w", o, key, err)
	}
	return version, nil
}

// Clear removes every key of owner and returns how many there were.
func (s *SQLite) Clear(ctx context.Context, o Owner, origin Origin) (int, int64, error) {
	var n, version int64
	err := s.write(ctx, origin, func(t *writeTx) error {
		res, err := t.exec(`
			DELETE FROM entries WHERE scope = ? AND user_id = ? AND tab_id = ?`,
			o.Scope, o.UserID, o.TabID)
		if err != nil {
			return err
		}
		if n, _ = res.RowsAffected(); n > 0 {
			version = t.nextVersion()
			t.record(Change{Owner: o, Op: OpClear, Version: version})
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("clear %s: %w", o, err)
	}
	return int(n), version, nil
}

// checkRoom refuses when owner o has no room for n more keys.
func (t *writeTx) checkRoom(o Owner, n int) error {
	var count int
	if err := t.queryRow(`
		SELECT count(*) FROM entries WHERE scope = ? AND user_id = ? AND tab_id = ?`,
		o.Scope, o.UserID, o.TabID).Scan(&count); err != nil {
		return err
	}
	if count+n > t.w.s.limits.KeysPerOwner {
		return ErrTooManyKeys
	}
	return nil
}
