package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
)

// maxBatch bounds how many waiting writes share one transaction.
const maxBatch = 256

// writeOp is one caller's write, run by the writer inside a shared
// transaction. fn reports its changes through the writeTx.
type writeOp struct {
	ctx    context.Context
	origin string
	fn     func(*writeTx) error
	err    error
	done   chan struct{}
}

// writeTx is what a write function sees: the transaction, the commit time,
// and a way to take versions and record changes.
type writeTx struct {
	ctx     context.Context
	tx      *sql.Tx
	now     int64 // unix milliseconds
	w       *writer
	origin  string
	changes []Change
}

// nextVersion takes the next number of the database-wide version sequence.
// Versions only grow, so a version seen later is always newer, even across a
// delete and re-insert of the same key.
func (t *writeTx) nextVersion() int64 {
	t.w.seq++
	return t.w.seq
}

func (t *writeTx) record(c Change) {
	c.Origin = t.origin
	t.changes = append(t.changes, c)
}

// writer owns the single write connection and the version sequence.
type writer struct {
	s   *Store
	seq int64
	buf []*writeOp
}

func newWriter(s *Store, seq int64) *writer {
	return &writer{s: s, seq: seq, buf: make([]*writeOp, 0, maxBatch)}
}

// write queues fn and waits until the transaction that ran it committed (or
// failed). A caller whose ctx ends before its write started gets ctx.Err()
// and nothing is written; once started, a write runs to the end.
func (s *Store) write(ctx context.Context, origin string, fn func(*writeTx) error) error {
	op := &writeOp{ctx: ctx, origin: origin, fn: fn, done: make(chan struct{})}
	select {
	case s.ops <- op:
	case <-s.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-op.done
	return op.err
}

func (w *writer) run() {
	defer close(w.s.done)
	for {
		select {
		case op := <-w.s.ops:
			w.batch(op)
		case <-w.s.closing:
			// Finish whatever is already handed over, then stop.
			for {
				select {
				case op := <-w.s.ops:
					w.batch(op)
				default:
					return
				}
			}
		}
	}
}

// batch runs first and every write waiting right now in one transaction.
// Each write runs inside a savepoint, so one write's error undoes only that
// write; the commit then acknowledges all the others together.
func (w *writer) batch(first *writeOp) {
	ops := append(w.buf[:0], first)
gather:
	for len(ops) < maxBatch {
		select {
		case op := <-w.s.ops:
			ops = append(ops, op)
		default:
			break gather
		}
	}
	changes, err := w.commit(ops)
	w.s.wstmts.prepareMissed(context.Background()) // the connection is free now
	if err != nil {
		w.s.log.Error("commit failed", "error", err, "writes", len(ops))
		for _, op := range ops {
			if op.err == nil {
				op.err = err
			}
		}
		changes = nil
	}
	if fn := w.s.onCommit.Load(); fn != nil && len(changes) > 0 {
		(*fn)(changes)
	}
	for _, op := range ops {
		close(op.done)
	}
	clear(ops)
}

func (w *writer) commit(ops []*writeOp) (changes []Change, err error) {
	// Writes run to the end even if their caller goes away, so that a
	// shutdown finishes the writes in flight.
	ctx := context.Background()
	seq0 := w.seq
	defer func() {
		if err != nil {
			w.seq = seq0
		}
	}()
	tx, err := w.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	now := w.s.now().UnixMilli()
	for _, op := range ops {
		if err := op.ctx.Err(); err != nil {
			op.err = err
			continue
		}
		if _, err := w.s.wstmts.exec(ctx, tx, `SAVEPOINT op`); err != nil {
			return nil, fmt.Errorf("savepoint: %w", err)
		}
		wt := writeTx{ctx: ctx, tx: tx, now: now, w: w, origin: op.origin}
		if op.err = op.fn(&wt); op.err != nil {
			if _, err := w.s.wstmts.exec(ctx, tx, `ROLLBACK TO op`); err != nil {
				return nil, fmt.Errorf("rollback to savepoint: %w", err)
			}
		} else {
			changes = append(changes, wt.changes...)
		}
		if _, err := w.s.wstmts.exec(ctx, tx, `RELEASE op`); err != nil {
			return nil, fmt.Errorf("release savepoint: %w", err)
		}
	}
	if w.seq != seq0 {
		if _, err := w.s.wstmts.exec(ctx, tx, `
			INSERT INTO settings (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
			settingSeq, strconv.FormatInt(w.seq, 10)); err != nil {
			return nil, fmt.Errorf("save version sequence: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return changes, nil
}

// ErrClosed is returned for writes that arrive after Close.
var ErrClosed = errors.New("store: closed")
