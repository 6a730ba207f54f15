package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/storagescopes/app/internal/metrics"
	"github.com/storagescopes/app/migrations"
)

// SQLite keeps the general, user and tab scopes in one SQLite file, one row
// per key. Every write commits before it is answered, so an acknowledged
// write survives a crash of the process. All writes go through one writer
// goroutine that gathers the writes waiting at that moment into one
// transaction (group commit); reads use a small pool of read-only
// connections, and recently read snapshots are kept in memory, current with
// every commit.
type SQLite struct {
	path    string
	sync    Sync
	rdb     *sql.DB // read-only pool
	wdb     *sql.DB // one connection, owned by the writer goroutine
	rstmts  *stmts  // prepared on rdb
	wstmts  *stmts  // prepared on wdb
	cache   *snapCache
	tabs    *tabNumbers // the tabs' numbers, read once each
	limits  Limits
	expiry  Expiry
	touched touches
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics.Metrics

	onCommit atomic.Pointer[func([]Change)]
	fault    atomic.Pointer[error] // the fault the last write met, or nil

	ops     chan *writeOp
	closing chan struct{}
	done    chan struct{}
	once    sync.Once

	boot Boot
}

// dsn builds the connection string. Every setting is in the DSN so that
// every pooled connection gets it, not only the first one. The writer
// begins its transactions IMMEDIATE (it takes the write lock at BEGIN, so
// it never fails to upgrade a read lock); readers begin deferred and never
// take it.
func (s *SQLite) dsn(role int) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+string(s.sync)+")")
	q.Add("_pragma", "foreign_keys(1)")
	switch role {
	case reader:
		q.Add("_pragma", "query_only(1)")
	case writerRole:
		q.Set("_txlock", "immediate")
		// The checkpointer keeps the WAL short; this is only the backstop
		// should it fall behind (4x SQLite's default).
		q.Add("_pragma", "wal_autocheckpoint(4000)")
	}
	return "file:" + s.path + "?" + q.Encode()
}

// The connections' roles.
const (
	writerRole = iota
	reader
	checkpointer
)

// Open opens (creating it if needed) the database at path, applies the
// migrations, counts this boot and starts the writer. It refuses a file that
// is not SQLite and a schema newer than this binary, leaving the file as it is.
func Open(ctx context.Context, path string, opts Options) (*SQLite, error) {
	opts = opts.withDefaults()
	if _, err := ParseSync(string(opts.SQLite.Sync)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create database folder: %w", err)
	}
	s := &SQLite{
		path:    path,
		sync:    opts.SQLite.Sync,
		limits:  opts.Limits,
		expiry:  opts.Expiry,
		cache:   newSnapCache(32<<20, 0, opts.Now),
		tabs:    newTabNumbers(opts.Now),
		now:     opts.Now,
		log:     opts.Logger,
		metrics: opts.Metrics,
		ops:     make(chan *writeOp),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}

	s.cache.metrics = opts.Metrics
	if err := checkHeader(path); err != nil {
		return nil, err
	}
	var err error
	if s.wdb, err = sql.Open("sqlite", s.dsn(writerRole)); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		s.wdb.Close()
		return nil, err
	}
	if s.rdb, err = sql.Open("sqlite", s.dsn(reader)); err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	s.rdb.SetMaxOpenConns(4)
	s.rdb.SetMaxIdleConns(4)
	s.rstmts, s.wstmts = &stmts{db: s.rdb}, &stmts{db: s.wdb}
	if err := s.start(ctx); err != nil {
		s.rdb.Close()
		s.wdb.Close()
		return nil, err
	}
	return s, nil
}

// checkHeader refuses an existing file that is not an SQLite database before
// SQLite gets a chance to touch it.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, 16)
	n, _ := f.Read(head)
	if n == 0 {
		return nil // an empty file is a new database
	}
	if string(head[:n]) != "SQLite format 3\x00" {
		return fmt.Errorf("database %s is not an SQLite database; refusing to use it (the file was left untouched)", path)
	}
	return nil
}

// migrate applies the embedded migrations, refusing a database whose schema
// is newer than this binary knows.
func (s *SQLite) migrate(ctx context.Context) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, s.wdb, migrations.FS,
		goose.WithDisableGlobalRegistry(true), goose.WithSlog(s.log))
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version of %s: %w", s.path, err)
	}
	sources := p.ListSources()
	if known := sources[len(sources)-1].Version; current > known {
		return fmt.Errorf("database %s has schema version %d, newer than this binary knows (%d); refusing to start", s.path, current, known)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", s.path, err)
	}
	return nil
}

// start counts this boot, loads the version sequence and starts the writer.
func (s *SQLite) start(ctx context.Context) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("count boot: %w", err)
	}
	defer tx.Rollback()
	number, err := incrementSetting(ctx, tx, settingBoots)
	if err != nil {
		return fmt.Errorf("count boot: %w", err)
	}
	seq, err := getSetting(ctx, tx, settingSeq)
	if err != nil {
		return fmt.Errorf("read version sequence: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("count boot: %w", err)
	}
	s.boot = Boot{Number: number, Time: s.now()}
	cp, err := sql.Open("sqlite", s.dsn(checkpointer))
	if err != nil {
		return fmt.Errorf("open checkpointer: %w", err)
	}
	cp.SetMaxOpenConns(1)
	go newWriter(s, parseInt(seq)).run()
	go s.sweepLoop()
	go s.checkpointLoop(cp)
	return nil
}

// Subscribe sets the function the writer calls after each commit, in
// commit order, with the changes of that commit (never for a failed
// write). It must not block: the next commit waits for it.
func (s *SQLite) Subscribe(fn func([]Change)) { s.onCommit.Store(&fn) }

// Announce reports a change this store does not keep (a browser-scope
// change, which lives in the cookie) to the subscriber, like a commit.
func (s *SQLite) Announce(_ context.Context, c Change) error {
	if fn := s.onCommit.Load(); fn != nil {
		(*fn)([]Change{c})
	}
	return nil
}

// SharePresence returns mine: one SQLite file serves one instance.
func (s *SQLite) SharePresence(_ context.Context, mine Presence) (Presence, error) {
	all := Presence{}
	all.Add(mine)
	return all, nil
}

// Boot returns the boot number and time of this start.
func (s *SQLite) Boot() Boot { return s.boot }

// Limits are the limits the store keeps to.
func (s *SQLite) Limits() Limits { return s.limits }

// Health reports a read pool that fails, or the fault the last write met.
func (s *SQLite) Health(ctx context.Context) error {
	if err := s.rdb.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if f := s.fault.Load(); f != nil {
		return *f
	}
	return nil
}

// sqliteFault names the store's fault an error of SQLite's is, if any.
func sqliteFault(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("%w: %w", ErrLocked, err)
	}
	return err
}

// Close stops taking writes, finishes those already queued, and closes the
// database. It is safe to call more than once.
func (s *SQLite) Close() error {
	s.once.Do(func() { close(s.closing) })
	<-s.done
	s.rstmts.close()
	s.wstmts.close()
	return errors.Join(s.rdb.Close(), s.wdb.Close())
}

const (
	settingBoots  = "boots"
	settingSeq    = "seq"
	settingSecret = "secret"
)

func getSetting(ctx context.Context, q queryer, name string) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func incrementSetting(ctx context.Context, q queryer, name string) (int64, error) {
	var v string
	err := q.QueryRowContext(ctx, `
		INSERT INTO settings (name, value) VALUES (?, '1')
		ON CONFLICT (name) DO UPDATE SET value = CAST(value AS INTEGER) + 1
		RETURNING value`, name).Scan(&v)
	return parseInt(v), err
}

func parseInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// queryer is what both *sql.DB and *sql.Tx offer.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Secret returns the server secret kept in the database, generating and
// storing a random one the first time. generated reports whether this call
// made it.
func (s *SQLite) Secret(ctx context.Context) (secret string, generated bool, err error) {
	if v, err := getSetting(ctx, s.rdb, settingSecret); err != nil || v != "" {
		return v, false, err
	}
	b := make([]byte, 32)
	rand.Read(b)
	candidate := hex.EncodeToString(b)
	err = s.write(ctx, Origin{}, func(t *writeTx) error {
		// On the writer's context: a caller that goes away must not fail
		// the other writes of the batch.
		err := t.queryRow(`SELECT value FROM settings WHERE name = ?`, settingSecret).Scan(&secret)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = t.exec(`INSERT INTO settings (name, value) VALUES (?, ?)`, settingSecret, candidate)
		secret, generated = candidate, true
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("keep generated secret: %w", err)
	}
	return secret, generated, nil
}

// Check runs SQLite's integrity check over the whole file.
func (s *SQLite) Check(ctx context.Context) error {
	var result string
	if err := s.rdb.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&result); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if result != "ok" {
		return fmt.Errorf("integrity check of %s: %s", s.path, result)
	}
	return nil
}
