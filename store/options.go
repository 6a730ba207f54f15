package store

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/storagescopes/app/internal/metrics"
)

// Options configure a Store: what both backends take, then each one's own.
// The zero value of each field picks a default.
type Options struct {
	// Limits bound what one owner may keep.
	Limits Limits
	// Expiry says when unused tabs and users are forgotten.
	Expiry Expiry
	// Now is the clock; tests inject one.
	Now func() time.Time
	// Logger receives the store's own messages.
	Logger *slog.Logger
	// Metrics receives commit times, batch sizes, cache lookups and Redis
	// faults; nil counts nothing.
	Metrics *metrics.Metrics
	// SQLite is what only SQLite (Open) takes.
	SQLite SQLiteOptions
	// Redis is what only Redis (OpenRedis) takes.
	Redis RedisOptions
}

// SQLiteOptions are SQLite's own options.
type SQLiteOptions struct {
	// Sync is SQLite's synchronous setting: SyncFull (the default) makes a
	// commit durable before it is acknowledged; SyncNormal only against a
	// crash of the process.
	Sync Sync
}

// RedisOptions are Redis's own options.
type RedisOptions struct {
	// Wait is how many replicas must have a write before it is
	// acknowledged (Redis's WAIT; default 0: the primary alone). With 0 a
	// failover can lose the writes acknowledged last; with 1 an
	// acknowledged write survives the loss of its primary. Fewer replicas
	// in time: ErrNoReplica.
	Wait int
	// PresenceTTL is how long an instance's share of the presence counts
	// unless it is shared again (default 30 s).
	PresenceTTL time.Duration
}

// Sync says when SQLite makes a commit durable.
type Sync string

const (
	// SyncFull syncs the write-ahead log at every commit: an acknowledged
	// write survives a power cut. Group commit shares the sync among the
	// writes of a batch.
	SyncFull Sync = "full"
	// SyncNormal syncs it only at checkpoints: an acknowledged write
	// survives a crash of the process (kill -9 included), not a power cut
	// or a crash of the kernel, which can lose the last commits.
	SyncNormal Sync = "normal"
)

// ParseSync reads a Sync setting by name.
func ParseSync(name string) (Sync, error) {
	switch s := Sync(name); s {
	case SyncFull, SyncNormal:
		return s, nil
	}
	return "", fmt.Errorf("sync %q: use full or normal", name)
}

// withDefaults fills in the zero fields.
func (o Options) withDefaults() Options {
	o.Limits = o.Limits.WithDefaults()
	o.Expiry = o.Expiry.withDefaults()
	if o.SQLite.Sync == "" {
		o.SQLite.Sync = SyncFull
	}
	if o.Redis.PresenceTTL <= 0 {
		o.Redis.PresenceTTL = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Expiry says when rows are forgotten. Zero fields take the defaults.
type Expiry struct {
	TabTTL  time.Duration // a tab unused this long is deleted (default 30 days)
	UserTTL time.Duration // a user unused this long is deleted with all its rows (default 400 days)
	// OneShot is how long a user whose cookie never came back is kept
	// (default 24 hours): one-shot visitors and bots do not pile up.
	OneShot time.Duration
	// Every is how often the background sweep runs (default 10 minutes).
	Every time.Duration
}

// DefaultExpiry is the documented expiry (the README's configuration).
var DefaultExpiry = Expiry{TabTTL: 30 * 24 * time.Hour, UserTTL: 400 * 24 * time.Hour, OneShot: 24 * time.Hour, Every: 10 * time.Minute}

func (e Expiry) withDefaults() Expiry {
	if e.TabTTL <= 0 {
		e.TabTTL = DefaultExpiry.TabTTL
	}
	if e.UserTTL <= 0 {
		e.UserTTL = DefaultExpiry.UserTTL
	}
	if e.OneShot <= 0 {
		e.OneShot = DefaultExpiry.OneShot
	}
	if e.Every <= 0 {
		e.Every = DefaultExpiry.Every
	}
	return e
}
