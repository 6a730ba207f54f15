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
	e, found, err := getEntry(ctx, s.rdb, o, key)
	if err != nil {
		return Entry{}, fmt.Errorf("get %s/%s: %w", o, key, err)
	}
	if !found {
		return Entry{}, ErrNotFound
	}
	return e, nil
}

// entryColumns are what a row says of its key, in the order scanEntry reads.
const entryColumns = `value, version, updated_at, origin_user, origin_tab, origin_api`

// scanEntry reads entryColumns into e.
func scanEntry(scan func(...any) error, e *Entry, extra ...any) error {
	var value string
	var updated int64
	if err := scan(append(extra, &value, &e.Version, &updated, &e.Origin.UserID, &e.Origin.Tab, &e.Origin.API)...); err != nil {
		return err
	}
	e.Value, e.UpdatedAt = json.RawMessage(value), time.UnixMilli(updated)
	return nil
}

// getEntry reads one key through q (the read pool, or the writer's
// transaction).
func getEntry(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, o Owner, key string) (Entry, bool, error) {
	e := Entry{Key: key}
	err := scanEntry(q.QueryRowContext(ctx, `SELECT `+entryColumns+` FROM entries
		WHERE scope = ? AND user_id = ? AND tab_id = ? AND key = ?`,
		o.Scope, o.UserID, o.TabID, key).Scan, &e)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, false, nil
	}
	return e, err == nil, err
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

// View returns what w shows of owner, from the cached snapshot (read and
// cached first if need be).
func (s *SQLite) View(ctx context.Context, o Owner, w Window) (View, error) {
	if v, ok := s.cache.view(o, w); ok {
		return v, nil
	}
	snap, err := s.list(ctx, o)
	if err != nil {
		return View{}, fmt.Errorf("view %s: %w", o, err)
	}
	s.cache.fill(o, snap)
	return snap.View(w), nil
}

func (s *SQLite) list(ctx context.Context, o Owner) (Snapshot, error) {
	var snap Snapshot
	// One statement is one read transaction: the sequence (the row with a
	// NULL key, sorted first) and the rows are from the same moment.
	rows, err := s.rstmts.queryDB(ctx, `
		SELECT NULL, value, 0, 0, '', 0, 0 FROM settings WHERE name = 'seq'
		UNION ALL
		SELECT key, `+entryColumns+` FROM entries
		WHERE scope = ? AND user_id = ? AND tab_id = ?
		ORDER BY 1`, o.Scope, o.UserID, o.TabID)
	if err != nil {
		return snap, err
	}
	defer rows.Close()
	for rows.Next() {
		var key sql.NullString
		var e Entry
		if err := scanEntry(rows.Scan, &e, &key); err != nil {
			return snap, err
		}
		if !key.Valid {
			snap.Version = parseInt(string(e.Value))
			continue
		}
		e.Key = key.String
		snap.Entries = append(snap.Entries, e)
	}
	return snap, rows.Err()
}

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
	return t.recordSet(m, value, version), nil
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

// CopyTab copies every row of one tab of userID to a new tab id, in one
// transaction: the duplicated tab starts with the original's data and the
// two are independent from then on. The new tab must hold no keys (its
// page may have been numbered already, by its live connection); a copy to
// a tab that holds some is refused with ErrTabExists, so that a replayed
// request cannot overwrite data.
func (s *SQLite) CopyTab(ctx context.Context, userID, fromTab, toTab string) error {
	to := TabOwner(userID, toTab)
	err := s.write(ctx, Origin{}, func(t *writeTx) error {
		var held int
		if err := t.queryRow(`
			SELECT count(*) FROM entries WHERE scope = 'tab' AND user_id = ? AND tab_id = ?`, userID, toTab).Scan(&held); err != nil {
			return err
		}
		if held > 0 {
			return ErrTabExists
		}
		// Only the new tab itself sees tab rows, and it renders them from
		// its own response, so the copy reports no change.
		t.stale = append(t.stale, to)
		if _, err := t.exec(`
			INSERT INTO entries (scope, user_id, tab_id, key, value, version, updated_at, origin_user, origin_tab, origin_api)
			SELECT scope, user_id, ?, key, value, ?, updated_at, origin_user, origin_tab, origin_api FROM entries
			WHERE scope = 'tab' AND user_id = ? AND tab_id = ?`,
			toTab, t.nextVersion(), userID, fromTab); err != nil {
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

// TabNumber returns the number of a tab in its browser, numbering it (with
// a write) only the first time it is seen.
func (s *SQLite) TabNumber(ctx context.Context, userID, tabID string) (int, error) {
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT number FROM tabs WHERE user_id = ? AND tab_id = ?`, userID, tabID).Scan(&n)
	if err == nil && n > 0 {
		return n, nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("tab number: %w", err)
	}
	if err := s.write(ctx, Origin{}, func(t *writeTx) (err error) {
		n, err = t.tabNumber(userID, tabID)
		return err
	}); err != nil {
		return 0, fmt.Errorf("tab number: %w", err)
	}
	return n, nil
}

// tabNumber ensures a tab (and its user) and returns its number.
func (t *writeTx) tabNumber(userID, tabID string) (int, error) {
	if err := t.ensureOwner(TabOwner(userID, tabID)); err != nil {
		return 0, err
	}
	return t.w.ensured[userID].tabs[tabID].number, nil
}

// resolveOrigin numbers the origin's tab (making it known if it is new):
// the change is kept with the tab's number, which never changes.
func (t *writeTx) resolveOrigin() error {
	o := &t.origin
	if o.API || o.UserID == "" || o.TabID == "" {
		return nil
	}
	n, err := t.tabNumber(o.UserID, o.TabID)
	o.Tab = n
	return err
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
	if u != nil && fresh(u.at) && (o.Scope == User || fresh(u.tabs[o.TabID].at)) {
		return nil
	}
	number, err := t.ensureRows(o)
	if err != nil {
		return err
	}
	if u == nil || !fresh(u.at) {
		if len(t.w.ensured) > 100_000 {
			clear(t.w.ensured) // forgetting only costs a statement
		}
		u = &ensuredUser{at: t.now, tabs: map[string]ensuredTab{}}
		t.w.ensured[o.UserID] = u
	}
	if o.Scope == Tab {
		u.tabs[o.TabID] = ensuredTab{at: t.now, number: number}
	}
	return nil
}

// ensureRows creates or refreshes the users (and tabs) row of o, and
// returns a tab's number.
func (t *writeTx) ensureRows(o Owner) (int, error) {
	t.w.s.touched.wrote(o.UserID)
	if _, err := t.exec(`
		INSERT INTO users (id, created_at, seen_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
		WHERE excluded.seen_at - seen_at >= ?`,
		o.UserID, t.now, t.now, touchInterval.Milliseconds()); err != nil {
		return 0, err
	}
	if o.Scope != Tab {
		return 0, nil
	}
	// A new tab takes its user's next number.
	var number int
	err := t.queryRow(`
		INSERT INTO tabs (user_id, tab_id, created_at, seen_at, number)
		SELECT id, ?, ?, ?, tabs_made + 1 FROM users WHERE id = ?
		ON CONFLICT (user_id, tab_id) DO NOTHING
		RETURNING number`,
		o.TabID, t.now, t.now, o.UserID).Scan(&number)
	switch {
	case err == nil:
		if _, err := t.exec(`UPDATE users SET tabs_made = ? WHERE id = ?`, number, o.UserID); err != nil {
			return 0, err
		}
		return number, t.evictTabs(o.UserID, o.TabID)
	case !errors.Is(err, sql.ErrNoRows):
		return 0, err
	}
	if err := t.queryRow(`SELECT number FROM tabs WHERE user_id = ? AND tab_id = ?`, o.UserID, o.TabID).Scan(&number); err != nil {
		return 0, err
	}
	_, err = t.exec(`
		UPDATE tabs SET seen_at = ? WHERE user_id = ? AND tab_id = ? AND ? - seen_at >= ?`,
		t.now, o.UserID, o.TabID, t.now, touchInterval.Milliseconds())
	return number, err
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
