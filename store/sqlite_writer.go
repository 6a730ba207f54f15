package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"
)

// maxBatch bounds how many waiting writes share one transaction.
const maxBatch = 256

// writeOp is one caller's write, run by the writer inside a shared
// transaction. fn reports its changes through the writeTx.
type writeOp struct {
	ctx    context.Context
	origin Origin
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
	origin  Origin // who writes, its tab numbered (resolveOrigin)
	changes []Change
	stale   []Owner // owners changed without a Change: cached copies are dropped
}

// nextVersion takes the next number of the database-wide version sequence.
// Versions only grow, so a version seen later is always newer, even across a
// delete and re-insert of the same key.
func (t *writeTx) nextVersion() int64 {
	t.w.seq++
	return t.w.seq
}

// record reports a change of this write, made now by its origin.
func (t *writeTx) record(c Change) Change {
	c.Origin, c.At = t.origin, t.now
	c.Origin.TabID = "" // the number says it
	t.changes = append(t.changes, c)
	return c
}

// writer owns the single write connection and the version sequence.
type writer struct {
	s   *SQLite
	seq int64
	buf []*writeOp
	// ensured remembers, per user, when its users row (and each tab's
	// row) was last created or refreshed, so most writes skip that.
	ensured map[string]*ensuredUser
	bound   map[string]*sql.Stmt // statements bound to the current transaction (see writeTx.stmt)
	known   knownValues
}

type ensuredUser struct {
	at   int64 // unix milliseconds
	tabs map[string]ensuredTab
}

type ensuredTab struct {
	at     int64 // unix milliseconds
	number int
}

func newWriter(s *SQLite, seq int64) *writer {
	return &writer{s: s, seq: seq, buf: make([]*writeOp, 0, maxBatch), ensured: map[string]*ensuredUser{}, bound: map[string]*sql.Stmt{}}
}

// refusal reports whether err is one a write function returns before it
// writes anything: the write is refused and the rest of its batch commits.
func refusal(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrTooManyKeys) || errors.Is(err, ErrTabExists) || errors.Is(err, ErrConflict)
}

// write queues fn and waits until the transaction that ran it committed (or
// failed). A caller whose ctx ends before its write started gets ctx.Err()
// and nothing is written; once started, a write runs to the end.
func (s *SQLite) write(ctx context.Context, origin Origin, fn func(*writeTx) error) error {
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

// batch runs first and every write waiting right now in one transaction,
// commits, and only then answers each. A write function refuses (ErrNotFound,
// ErrTooManyKeys, ErrTabExists, a *ConflictError) before it writes anything, so a refused
// write leaves nothing behind and the others commit; any other error fails
// the whole batch, which then commits nothing.
func (w *writer) batch(first *writeOp) {
	ops := append(w.buf[:0], first)
	// Let the handlers that are about to hand over a write do so first: a
	// commit's fixed cost is most of a small batch, and the yield costs
	// nothing when nobody else is running.
	runtime.Gosched()
gather:
	for len(ops) < maxBatch {
		select {
		case op := <-w.s.ops:
			ops = append(ops, op)
		default:
			break gather
		}
	}
	start := time.Now()
	changes, err := w.commit(ops)
	w.s.metrics.Commit(len(ops), time.Since(start))
	w.s.wstmts.prepareMissed(context.Background()) // the connection is free now
	w.noteFault(err)
	if err != nil {
		clear(w.ensured) // it may name rows that were rolled back
		w.known.forget()
		err = sqliteFault(err)
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

// noteFault keeps the fault a batch met (or clears it) for Health, and
// logs every failure that is no fault. A fault is logged where it is seen
// starting and ending (the live hub's health watch), not once per write.
func (w *writer) noteFault(err error) {
	if err == nil {
		if w.s.fault.Load() != nil {
			w.s.fault.Store(nil)
		}
		return
	}
	fault := sqliteFault(err)
	if FaultOf(fault) == nil {
		w.s.log.Error("commit failed", "error", err)
		return
	}
	w.s.fault.Store(&fault)
}

func (w *writer) commit(ops []*writeOp) (changes []Change, err error) {
	changes = make([]Change, 0, len(ops)) // most writes make one change
	var stale []Owner
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
	defer clear(w.bound) // they end with the transaction
	now := w.s.now().UnixMilli()
	for _, op := range ops {
		if err := op.ctx.Err(); err != nil {
			op.err = err
			continue
		}
		wt := writeTx{ctx: ctx, tx: tx, now: now, w: w, origin: op.origin}
		op.err = wt.resolveOrigin()
		if op.err == nil {
			op.err = op.fn(&wt)
		}
		switch {
		case op.err == nil:
			w.known.learn(wt.changes, wt.stale)
			changes = append(changes, wt.changes...)
			stale = append(stale, wt.stale...)
		case refusal(op.err):
			// Refused before it wrote a key; numbering its tab may have
			// evicted another.
			w.known.learn(nil, wt.stale)
			stale = append(stale, wt.stale...)
		default:
			// Something broke mid-write: none of the batch commits.
			return nil, op.err
		}
	}
	if len(stale) > 0 && w.seq == seq0 {
		// Owners changed without a Change (swept, evicted): the commit
		// still takes a version, so that what a page was shown before it is
		// told from what it is shown after.
		w.seq++
	}
	if w.seq != seq0 {
		wt := writeTx{ctx: ctx, tx: tx, now: now, w: w}
		if _, err := wt.exec(`
			INSERT INTO settings (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
			settingSeq, strconv.FormatInt(w.seq, 10)); err != nil {
			return nil, fmt.Errorf("save version sequence: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	// Before anyone hears of the commit, the cached snapshots include it,
	// and the numbers of the tabs it deleted are forgotten.
	w.s.cache.apply(changes, stale)
	if len(stale) > 0 {
		w.s.tabs.forget(stale...)
	}
	return changes, nil
}

// knownValues are the values the writer itself last wrote, per owner and
// key, as of its open transaction: an increment then needs no read for its
// key's value, nor a room check for a key it knows exists. Only the writer
// writes, so what it wrote stays true until it writes again. It learns from
// each write's changes; it forgets an owner changed without a Change (a
// copied, evicted or expired tab; expired users), everything after a failed
// commit, and everything when it grows past maxKnownBytes.
type knownValues struct {
	m     map[Owner]map[string]json.RawMessage
	bytes int
}

const maxKnownBytes = 4 << 20

func (k *knownValues) get(o Owner, key string) (json.RawMessage, bool) {
	v, ok := k.m[o][key]
	return v, ok
}

// learn takes in one write's changes, then forgets its stale owners: an
// owner can change and then go in the same write (a tab written, then
// evicted by a new tab of the same Apply), and forgetting is always safe.
func (k *knownValues) learn(changes []Change, stale []Owner) {
	if k.bytes > maxKnownBytes {
		k.forget()
	}
	for _, c := range changes {
		keys := k.m[c.Owner]
		if old, ok := keys[c.Key]; ok {
			k.bytes -= knownSize(c.Key, old)
			delete(keys, c.Key)
		}
		switch c.Op {
		case OpSet:
			if keys == nil {
				if k.m == nil {
					k.m = map[Owner]map[string]json.RawMessage{}
				}
				keys = map[string]json.RawMessage{}
				k.m[c.Owner] = keys
			}
			keys[c.Key] = c.Value
			k.bytes += knownSize(c.Key, c.Value)
		case OpDelete: // forgotten above
		default: // OpClear, or whatever else comes: unknown from now on
			k.forgetOwner(c.Owner)
		}
	}
	for _, o := range stale {
		k.forgetOwner(o)
	}
}

func knownSize(key string, v json.RawMessage) int { return entrySize(Entry{Key: key, Value: v}) }

func (k *knownValues) forgetOwner(o Owner) {
	for key, v := range k.m[o] {
		k.bytes -= knownSize(key, v)
	}
	delete(k.m, o)
}

func (k *knownValues) forget() {
	k.m, k.bytes = nil, 0
}
