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

// exec, query and queryRow run a statement inside a transaction, prepared
// if it has been.
func (c *stmts) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if s := c.lookup(query); s != nil {
		return tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

func (c *stmts) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if s := c.lookup(query); s != nil {
		return tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}

func (c *stmts) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if s := c.lookup(query); s != nil {
		return tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// The writer's statements, run inside its transaction.
func (t *writeTx) exec(query string, args ...any) (sql.Result, error) {
	return t.w.s.wstmts.exec(t.ctx, t.tx, query, args...)
}

func (t *writeTx) query(query string, args ...any) (*sql.Rows, error) {
	return t.w.s.wstmts.query(t.ctx, t.tx, query, args...)
}

func (t *writeTx) queryRow(query string, args ...any) *sql.Row {
	return t.w.s.wstmts.queryRow(t.ctx, t.tx, query, args...)
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
