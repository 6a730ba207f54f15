package store

import (
	"context"
	"database/sql"
	"sync"
)

// stmts prepares each query once per pool and keeps it: SQLite spends more
// time parsing a small statement than running it. database/sql prepares a
// Stmt again on each connection it runs on, and a transaction reuses the
// one prepared on its connection.
//
// Preparing needs a free connection, and a transaction holds one (the
// writer's pool has only that one): so inside a transaction a statement not
// yet prepared runs unprepared and is noted, and prepareMissed prepares the
// noted ones once the caller holds no connection.
type stmts struct {
	db     *sql.DB
	m      sync.Map // query -> *sql.Stmt
	mu     sync.Mutex
	missed map[string]bool
}

func (c *stmts) lookup(query string) *sql.Stmt {
	if s, ok := c.m.Load(query); ok {
		return s.(*sql.Stmt)
	}
	c.mu.Lock()
	if c.missed == nil {
		c.missed = map[string]bool{}
	}
	c.missed[query] = true
	c.mu.Unlock()
	return nil
}

// prepareMissed prepares the statements that ran unprepared. The caller
// must hold no connection of c.db.
func (c *stmts) prepareMissed(ctx context.Context) {
	c.mu.Lock()
	missed := c.missed
	c.missed = nil
	c.mu.Unlock()
	for query := range missed {
		if _, ok := c.m.Load(query); ok {
			continue
		}
		if s, err := c.db.PrepareContext(ctx, query); err == nil {
			if _, loaded := c.m.LoadOrStore(query, s); loaded {
				s.Close()
			}
		}
	}
}

func (c *stmts) close() {
	c.m.Range(func(_, s any) bool {
		s.(*sql.Stmt).Close()
		return true
	})
}

// queryDB runs a statement outside any transaction (a single statement is
// its own read transaction), preparing it first if needed: the caller holds
// no connection, so preparing can wait for one.
func (c *stmts) queryDB(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if c.lookup(query) == nil {
		c.prepareMissed(ctx)
	}
	if s := c.lookup(query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return c.db.QueryContext(ctx, query, args...)
}

// The writer's statements, run inside its transaction. database/sql binds
// a prepared statement to a transaction with a new Stmt each time
// (Tx.StmtContext); a batch runs the same few statements once per write, so
// each is bound once per batch and kept until the transaction ends.
func (t *writeTx) stmt(query string) *sql.Stmt {
	if s, ok := t.w.bound[query]; ok {
		return s
	}
	p := t.w.s.wstmts.lookup(query)
	if p == nil {
		return nil // not prepared yet: run as text this time
	}
	s := t.tx.StmtContext(t.ctx, p)
	t.w.bound[query] = s
	return s
}

func (t *writeTx) exec(query string, args ...any) (sql.Result, error) {
	if s := t.stmt(query); s != nil {
		return s.ExecContext(t.ctx, args...)
	}
	return t.tx.ExecContext(t.ctx, query, args...)
}

func (t *writeTx) query(query string, args ...any) (*sql.Rows, error) {
	if s := t.stmt(query); s != nil {
		return s.QueryContext(t.ctx, args...)
	}
	return t.tx.QueryContext(t.ctx, query, args...)
}

func (t *writeTx) queryRow(query string, args ...any) *sql.Row {
	if s := t.stmt(query); s != nil {
		return s.QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, query, args...)
}

// queryStrings runs a query of one text column and returns its values.
func (t *writeTx) queryStrings(query string, args ...any) ([]string, error) {
	rows, err := t.query(query, args...)
	if err != nil {
		return nil, err
	}
	return scanAll(rows, func(r *sql.Rows) (v string, err error) { return v, r.Scan(&v) })
}

// scanAll reads every row with scan and closes rows.
func scanAll[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
