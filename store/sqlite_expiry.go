package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Swept counts what one sweep deleted.
type Swept struct {
	Tabs, Users, Rows int
}

// sweepBatch bounds how many owners one transaction deletes, so that a big
// sweep never holds the write lock for long.
const sweepBatch = 500

// Sweep deletes the tabs and users that expired by now, in small
// transactions through the writer, and reports what it deleted.
func (s *SQLite) Sweep(ctx context.Context) (Swept, error) {
	var total Swept
	now := s.now().UnixMilli()
	for {
		var n Swept
		err := s.write(ctx, Origin{}, func(t *writeTx) error {
			// Users first: their tabs and rows go with them.
			users, err := t.queryStrings(`
				SELECT id FROM users WHERE seen_at < ?
				UNION SELECT id FROM users WHERE returned = 0 AND created_at < ?
				LIMIT ?`, now-s.expiry.UserTTL.Milliseconds(), now-s.expiry.OneShot.Milliseconds(), sweepBatch)
			if err != nil {
				return err
			}
			for _, id := range users {
				// The owners losing rows: their cached snapshots go, and
				// only theirs.
				rows, err := t.query(`
					SELECT DISTINCT scope, tab_id FROM entries WHERE scope IN ('user', 'tab') AND user_id = ?`, id)
				if err != nil {
					return err
				}
				owners, err := scanAll(rows, func(r *sql.Rows) (o Owner, err error) {
					o.UserID = id
					return o, r.Scan(&o.Scope, &o.TabID)
				})
				if err != nil {
					return err
				}
				t.stale = append(t.stale, owners...)
				t.stale = append(t.stale, UserOwner(id)) // its tabs' numbers go too
				res, err := t.exec(`DELETE FROM entries WHERE scope IN ('user', 'tab') AND user_id = ?`, id)
				if err != nil {
					return err
				}
				deleted, _ := res.RowsAffected()
				n.Rows += int(deleted)
				if _, err := t.exec(`DELETE FROM users WHERE id = ?`, id); err != nil {
					return err // its tabs go by ON DELETE CASCADE
				}
				s.touched.forget(id)
				delete(t.w.ensured, id)
			}
			n.Users = len(users)

			rows, err := t.query(`
				SELECT user_id, tab_id FROM tabs WHERE seen_at < ? LIMIT ?`,
				now-s.expiry.TabTTL.Milliseconds(), sweepBatch)
			if err != nil {
				return err
			}
			tabs, err := scanAll(rows, func(r *sql.Rows) (ut [2]string, err error) { return ut, r.Scan(&ut[0], &ut[1]) })
			if err != nil {
				return err
			}
			for _, ut := range tabs {
				deleted, err := t.deleteTab(ut[0], ut[1])
				if err != nil {
					return err
				}
				n.Rows += deleted
			}
			n.Tabs = len(tabs)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("sweep: %w", err)
		}
		total.Tabs += n.Tabs
		total.Users += n.Users
		total.Rows += n.Rows
		if n.Users < sweepBatch && n.Tabs < sweepBatch {
			return total, nil
		}
	}
}

// sweepLoop sweeps now and then every Expiry.Every until the store closes.
func (s *SQLite) sweepLoop() {
	t := time.NewTicker(s.expiry.Every)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n, err := s.Sweep(ctx)
		cancel()
		switch {
		case errors.Is(err, ErrClosed):
			return
		case err != nil:
			s.log.Error("expiry sweep failed", "error", err)
		case n.Users+n.Tabs > 0:
			s.log.Info("expired", "users", n.Users, "tabs", n.Tabs, "rows", n.Rows)
		}
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
	}
}

// Touch records that a user (and a tab, if tabID is set) was seen, without
// a write on every request: at most once per touchInterval per owner, or
// at once the first time a user's cookie comes back (returning), which
// keeps it beyond the one-shot grace. A user without rows yet (its first
// write is still to come) is touched again once it is written (see
// touches.countWrite), or after the interval.
func (s *SQLite) Touch(ctx context.Context, userID, tabID string, returning bool) error {
	now := s.now()
	due, writes := s.touched.needed(userID, tabID, now, returning)
	if !due {
		return nil
	}
	var found bool
	err := s.write(ctx, Origin{}, func(t *writeTx) error {
		res, err := t.exec(`
			UPDATE users SET seen_at = ?, returned = returned OR ? WHERE id = ?`, t.now, returning, userID)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		found = n == 1
		if tabID == "" {
			return nil
		}
		_, err = t.exec(`UPDATE tabs SET seen_at = ? WHERE user_id = ? AND tab_id = ?`, t.now, userID, tabID)
		return err
	})
	if err != nil {
		return fmt.Errorf("touch %s: %w", userID, err)
	}
	s.touched.record(userID, tabID, now, returning, found, writes)
	return nil
}

// TouchDue reports whether Touch would write now (as Store).
func (s *SQLite) TouchDue(userID, tabID string, returning bool) bool {
	due, _ := s.touched.needed(userID, tabID, s.now(), returning)
	return due
}

// touches remembers when each user and tab was last touched, so that
// most requests cost a map lookup and no write.
type touches struct {
	mu sync.Mutex
	m  map[string]*userTouch
}

type userTouch struct {
	at        time.Time
	returning bool   // the returning cookie was told
	absent    bool   // ... while the user had no row yet
	writes    uint64 // writes that may have made its row (countWrite)
	tabs      map[string]time.Time
}

// needed reports whether a touch is to be written, and the user's writes so
// far, which record needs.
func (t *touches) needed(userID, tabID string, now time.Time, returning bool) (bool, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.m[userID]
	if !ok {
		return true, 0
	}
	if now.Sub(u.at) >= touchInterval || (returning && !u.returning) {
		return true, u.writes
	}
	if tabID == "" {
		return false, u.writes
	}
	at, ok := u.tabs[tabID]
	return !ok || now.Sub(at) >= touchInterval, u.writes
}

// record records a touch; found says the user exists, writes is what needed
// answered. A returning cookie whose user has no row yet is not told again
// with every request (a reader would cost a write, or a Redis round trip,
// per page) but again after a write that may have made the row (countWrite),
// or the row would stay one-shot; so too when such a write ran while the
// touch looked (the touch of a request runs beside its own write).
func (t *touches) record(userID, tabID string, now time.Time, returning, found bool, writes uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.entry(userID)
	u.at = now
	switch {
	case !returning:
	case found:
		u.returning, u.absent = true, false
	case u.writes == writes: // no row, and no write since needed looked
		u.returning, u.absent = true, true
	}
	if tabID != "" {
		u.tabs[tabID] = now
	}
}

// countWrite tells that a write may have made userID's row: a returning cookie
// told while it had none is told again with its next request.
func (t *touches) countWrite(userID string) {
	if userID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.entry(userID)
	u.writes++
	if u.absent {
		u.returning, u.absent = false, false
	}
}

// entry is userID's record, made if need be. t.mu is held.
func (t *touches) entry(userID string) *userTouch {
	if t.m == nil || len(t.m) > 100_000 { // forgetting only costs a write
		t.m = map[string]*userTouch{}
	}
	u, ok := t.m[userID]
	if !ok {
		u = &userTouch{tabs: map[string]time.Time{}}
		t.m[userID] = u
	}
	return u
}

func (t *touches) forget(userID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, userID)
}
