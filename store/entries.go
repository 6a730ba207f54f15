package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Get returns one key of owner, or ErrNotFound.
func (s *SQLite) Get(ctx context.Context, o Owner, key string) (Entry, error) {
	e := Entry{Key: key}
	var value string
	var updated int64
	err := s.rdb.QueryRowContext(ctx, `
		SELECT value, version, updated_at FROM entries
		WHERE scope = ? AND user_id = ? AND tab_id = ? AND key = ?`,
		o.Scope, o.UserID, o.TabID, key).Scan(&value, &e.Version, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("get %s/%s: %w", o, key, err)
	}
	e.Value, e.UpdatedAt = json.RawMessage(value), time.UnixMilli(updated)
	return e, nil
}

// List returns every key of owner, sorted by key, with the version of the
// moment they were read (both from one read transaction).
func (s *SQLite) List(ctx context.Context, o Owner) (Snapshot, error) {
	if snap, ok := s.cache.get(o); ok {
		return snap, nil
	}
	snap, err := s.list(ctx, o)
	if err != nil {
		return Snapshot{}, fmt.Errorf("list %s: %w", o, err)
	}
	s.cache.fill(o, snap)
	return snap, nil
}

func (s *SQLite) list(ctx context.Context, o Owner) (Snapshot, error) {
	var snap Snapshot
	// One statement is one read transaction: the sequence (the row with a
	// NULL key, sorted first) and the rows are from the same moment.
	rows, err := s.rstmts.queryDB(ctx, `
		SELECT NULL, value, 0, 0 FROM settings WHERE name = 'seq'
		UNION ALL
		SELECT key, value, version, updated_at FROM entries
		WHERE scope = ? AND user_id = ? AND tab_id = ?
		ORDER BY 1`, o.Scope, o.UserID, o.TabID)
	if err != nil {
		return snap, err
	}
	defer rows.Close()
	for rows.Next() {
		var key sql.NullString
		var e Entry
		var value string
		var updated int64
		if err := rows.Scan(&key, &value, &e.Version, &updated); err != nil {
			return snap, err
		}
		if !key.Valid {
			snap.Version = parseInt(value)
			continue
		}
		e.Key, e.Value, e.UpdatedAt = key.String, json.RawMessage(value), time.UnixMilli(updated)
		snap.Entries = append(snap.Entries, e)
	}
	return snap, rows.Err()
}

// Apply runs several sets and increments as one write, all or nothing, and
// returns the new entries in order: a page view counts its visits in three
// places for the cost of one.
func (s *SQLite) Apply(ctx context.Context, origin string, muts ...Mutation) ([]Entry, error) {
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

// updateEntry writes a key's value, if the key exists.
const updateEntry = `
	UPDATE entries SET value = ?, version = ?, updated_at = ?
	WHERE scope = ? AND user_id = ? AND tab_id = ? AND key = ?`

// set stores one value: an update if the key exists (one statement), else
// a room check and an insert. A refusal comes before anything is written.
func (t *writeTx) set(m Mutation) (Entry, error) {
	v := t.nextVersion()
	res, err := t.exec(updateEntry, string(m.Value), v, t.now, m.Owner.Scope, m.Owner.UserID, m.Owner.TabID, m.Key)
	if err != nil {
		return Entry{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 { // a new key
		if err := t.checkRoom(m.Owner, 1); err != nil {
			return Entry{}, err
		}
		return t.insert(m, m.Value, v)
	}
	if err := t.ensureOwner(m.Owner); err != nil {
		return Entry{}, err
	}
	return t.recordSet(m, m.Value, v), nil
}

// applyAll learns every key's current value first, so that every refusal
// comes before the first write and each increment knows its new value;
// then it writes. What the writer wrote itself it knows already (see
// knownValues); the rest it reads in one statement, not one per key.
func (t *writeTx) applyAll(muts []Mutation, out []Entry) error {
	current := make([]json.RawMessage, len(muts)) // nil: no such key
	var unknown []int
	for i, m := range muts {
		if v, ok := t.w.known.get(m.Owner, m.Key); ok {
			current[i] = v
		} else {
			unknown = append(unknown, i)
		}
	}
	if err := t.lookup(muts, unknown, current); err != nil {
		return err
	}
	added := map[Owner]int{}
	for i, m := range muts {
		if current[i] == nil {
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
			value = NextCount(current[i])
		}
		var err error
		if current[i] != nil {
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

// lookup reads into values[i] the stored value of muts[i], for each i in
// which, in one statement: a point lookup per key, each answering with its
// index if the key exists (values[i] stays nil if not).
func (t *writeTx) lookup(muts []Mutation, which []int, values []json.RawMessage) error {
	if len(which) == 0 {
		return nil
	}
	var q strings.Builder
	args := make([]any, 0, 5*len(which))
	for n, i := range which {
		if n > 0 {
			q.WriteString(" UNION ALL ")
		}
		q.WriteString(`SELECT ?, value FROM entries WHERE scope = ? AND user_id = ? AND tab_id = ? AND key = ?`)
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
		if err := rows.Scan(&i, &v); err != nil {
			return err
		}
		values[i] = json.RawMessage(v)
	}
	return rows.Err()
}

// update writes value to a key known to exist.
func (t *writeTx) update(m Mutation, value json.RawMessage, version int64) (Entry, error) {
	if err := t.ensureOwner(m.Owner); err != nil {
		return Entry{}, err
	}
	if _, err := t.exec(updateEntry, string(value), version, t.now, m.Owner.Scope, m.Owner.UserID, m.Owner.TabID, m.Key); err != nil {
		return Entry{}, err
	}
	return t.recordSet(m, value, version), nil
}

// insert writes a new key; the caller has checked the room.
func (t *writeTx) insert(m Mutation, value json.RawMessage, version int64) (Entry, error) {
	if err := t.ensureOwner(m.Owner); err != nil {
		return Entry{}, err
	}
	if _, err := t.exec(`
		INSERT INTO entries (scope, user_id, tab_id, key, value, version, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		m.Owner.Scope, m.Owner.UserID, m.Owner.TabID, m.Key, string(value), version, t.now); err != nil {
		return Entry{}, err
	}
	return t.recordSet(m, value, version), nil
}

// recordSet reports a key's new value.
func (t *writeTx) recordSet(m Mutation, value json.RawMessage, version int64) Entry {
	t.record(Change{Owner: m.Owner, Op: OpSet, Key: m.Key, Value: value, Version: version})
	return Entry{Key: m.Key, Value: value, Version: version, UpdatedAt: time.UnixMilli(t.now)}
}

// Delete removes key from owner, or returns ErrNotFound.
func (s *SQLite) Delete(ctx context.Context, o Owner, key string, origin string) error {
	err := s.write(ctx, origin, func(t *writeTx) error {
		res, err := t.exec(`
			DELETE FROM entries WHERE scope = ? AND user_id = ? AND tab_id = ? AND key = ?`,
			o.Scope, o.UserID, o.TabID, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		t.record(Change{Owner: o, Op: OpDelete, Key: key, Version: t.nextVersion()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", o, key, err)
	}
	return nil
}

// Clear removes every key of owner and returns how many there were.
func (s *SQLite) Clear(ctx context.Context, o Owner, origin string) (int, error) {
	var n int64
	err := s.write(ctx, origin, func(t *writeTx) error {
		res, err := t.exec(`
			DELETE FROM entries WHERE scope = ? AND user_id = ? AND tab_id = ?`,
			o.Scope, o.UserID, o.TabID)
		if err != nil {
			return err
		}
		if n, _ = res.RowsAffected(); n > 0 {
			t.record(Change{Owner: o, Op: OpClear, Version: t.nextVersion()})
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("clear %s: %w", o, err)
	}
	return int(n), nil
}

// CopyTab copies every row of one tab of userID to a new tab id, in one
// transaction: the duplicated tab starts with the original's data and the
// two are independent from then on. The new tab must be empty; a copy to a
// tab that already has rows is refused with ErrTabExists, so that a replayed
// request cannot overwrite data.
func (s *SQLite) CopyTab(ctx context.Context, userID, fromTab, toTab string, origin string) error {
	to := TabOwner(userID, toTab)
	err := s.write(ctx, origin, func(t *writeTx) error {
		var exists int
		if err := t.queryRow(`
			SELECT count(*) FROM tabs WHERE user_id = ? AND tab_id = ?`, userID, toTab).Scan(&exists); err != nil {
			return err
		}
		if exists > 0 {
			return ErrTabExists
		}
		// Only the new tab itself sees tab rows, and it renders them from
		// its own response, so the copy reports no change.
		t.stale = append(t.stale, to)
		if _, err := t.exec(`
			INSERT INTO entries (scope, user_id, tab_id, key, value, version, updated_at)
			SELECT scope, user_id, ?, key, value, ?, ? FROM entries
			WHERE scope = 'tab' AND user_id = ? AND tab_id = ?`,
			toTab, t.nextVersion(), t.now, userID, fromTab); err != nil {
			return err
		}
		// Only now: a new tab over the cap evicts the oldest, which may be
		// the one just copied.
		return t.ensureOwner(to)
	})
	if err != nil {
		return fmt.Errorf("copy tab %s to %s: %w", fromTab, toTab, err)
	}
	return nil
}

// ensureOwner creates the user (and tab) rows of o on its first write and
// refreshes their last-seen time, evicting the user's oldest tab when a new
// one goes over the cap.
func (t *writeTx) ensureOwner(o Owner) error {
	if o.Scope == General {
		return nil
	}
	// Most writes come from owners this writer ensured a moment ago.
	u := t.w.ensured[o.UserID]
	fresh := func(at int64) bool { return t.now-at < touchInterval.Milliseconds() }
	if u != nil && fresh(u.at) && (o.Scope == User || fresh(u.tabs[o.TabID])) {
		return nil
	}
	if err := t.ensureRows(o); err != nil {
		return err
	}
	if u == nil || !fresh(u.at) {
		if len(t.w.ensured) > 100_000 {
			clear(t.w.ensured) // forgetting only costs a statement
		}
		u = &ensuredUser{at: t.now, tabs: map[string]int64{}}
		t.w.ensured[o.UserID] = u
	}
	if o.Scope == Tab {
		u.tabs[o.TabID] = t.now
	}
	return nil
}

// ensureRows creates or refreshes the users (and tabs) row of o.
func (t *writeTx) ensureRows(o Owner) error {
	if _, err := t.exec(`
		INSERT INTO users (id, created_at, seen_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
		WHERE excluded.seen_at - seen_at >= ?`,
		o.UserID, t.now, t.now, touchInterval.Milliseconds()); err != nil {
		return err
	}
	if o.Scope != Tab {
		return nil
	}
	res, err := t.exec(`
		INSERT INTO tabs (user_id, tab_id, created_at, seen_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, tab_id) DO NOTHING`,
		o.UserID, o.TabID, t.now, t.now)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		_, err := t.exec(`
			UPDATE tabs SET seen_at = ? WHERE user_id = ? AND tab_id = ? AND ? - seen_at >= ?`,
			t.now, o.UserID, o.TabID, t.now, touchInterval.Milliseconds())
		return err
	}
	return t.evictTabs(o.UserID, o.TabID)
}

// evictTabs deletes the least recently seen tabs of userID beyond the cap,
// never the new tab itself.
func (t *writeTx) evictTabs(userID, newTab string) error {
	evict, err := t.queryStrings(`
		SELECT tab_id FROM tabs WHERE user_id = ? AND tab_id != ?
		ORDER BY seen_at DESC, created_at DESC LIMIT -1 OFFSET ?`,
		userID, newTab, t.w.s.limits.TabsPerUser-1)
	if err != nil {
		return err
	}
	for _, id := range evict {
		if _, err := t.deleteTab(userID, id); err != nil {
			return err
		}
	}
	return nil
}

// deleteTab deletes a tab and its rows, and returns how many rows.
func (t *writeTx) deleteTab(userID, tabID string) (int, error) {
	t.stale = append(t.stale, TabOwner(userID, tabID))
	if u := t.w.ensured[userID]; u != nil {
		delete(u.tabs, tabID)
	}
	res, err := t.exec(`
		DELETE FROM entries WHERE scope = 'tab' AND user_id = ? AND tab_id = ?`, userID, tabID)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	_, err = t.exec(`DELETE FROM tabs WHERE user_id = ? AND tab_id = ?`, userID, tabID)
	return int(n), err
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

// touchInterval is how stale a last-seen time may get before a write
// refreshes it; it keeps the expiry bookkeeping from costing a write per
// request.
const touchInterval = time.Hour
