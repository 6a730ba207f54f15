package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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
	since := s.cache.readStart()
	snap, err := s.list(ctx, o)
	if err != nil {
		return Snapshot{}, fmt.Errorf("list %s: %w", o, err)
	}
	s.cache.fill(o, snap, since)
	return snap, nil
}

// View returns what w shows of owner, from the cached snapshot (read and
// cached first if need be).
func (s *SQLite) View(ctx context.Context, o Owner, w Window) (View, error) {
	if v, ok := s.cache.view(o, w); ok {
		return v, nil
	}
	since := s.cache.readStart()
	snap, err := s.list(ctx, o)
	if err != nil {
		return View{}, fmt.Errorf("view %s: %w", o, err)
	}
	s.cache.fill(o, snap, since)
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
