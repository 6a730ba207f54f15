package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

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
	n, ok, gen := s.tabs.get(userID, tabID)
	if ok {
		return n, nil
	}
	err := s.rdb.QueryRowContext(ctx, `SELECT number FROM tabs WHERE user_id = ? AND tab_id = ?`, userID, tabID).Scan(&n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("tab number: %w", err)
	}
	if err != nil || n == 0 {
		if err := s.write(ctx, Origin{}, func(t *writeTx) (err error) {
			n, err = t.tabNumber(userID, tabID)
			return err
		}); err != nil {
			return 0, fmt.Errorf("tab number: %w", err)
		}
	}
	s.tabs.put(userID, tabID, n, gen)
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
	t.w.s.touched.countWrite(o.UserID)
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

// touchInterval is how stale a last-seen time may get before a write
// refreshes it; it keeps the expiry bookkeeping from costing a write per
// request.
const touchInterval = time.Hour
