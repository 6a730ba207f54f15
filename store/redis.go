package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/storagescopes/app/internal/metrics"
)

// Redis keeps the general, user and tab scopes in Redis, so that several
// instances of the app can share them. It keeps the Store contract as
// SQLite does: one field per key with a version from one store-wide
// sequence, atomic increments, caps, tab copies, expiry (here by Redis
// TTLs, refreshed on use), and a report of every committed change, from
// any instance.
//
// Layout (prefix "scopes:"): a hash per owner, o:general, o:user:{id} and
// o:tab:{id}:{tab}, whose fields hold "version ms json"; the counter seq;
// per user a hash m:{id} (created, returned, last kept) and a sorted set
// tabs:{id} of its tabs by last use; boots and secret. Every write is one
// Lua script, so it is atomic, and publishes its change on the channel
// changes.
//
// On a Redis Cluster a script may touch the keys of one slot only, so each
// owner's keys (and its counter seq) take its owner's hash tag after the
// prefix (prefixOf): a user's and its tabs' "scopes:{u:id}:", the general
// scope's "scopes:{g}:", presence "scopes:{presence}:". Versions then count
// per slot: ordered per owner, not across owners. The channel is still one:
// a cluster's PUBLISH reaches every node.
type Redis struct {
	rdb     redisClient
	cluster bool // rdb is a Redis Cluster
	// ap batches the commands of concurrent requests into pipelines (one
	// write and one read for many, as SQLite's writer groups commits);
	// every request's command goes through it. Start-up, Health and the
	// subscription use rdb.
	ap *redis.AutoPipeliner
	// async is the same for commands nobody waits for (Announce).
	async  *redis.AutoPipeliner
	prefix string
	limits Limits
	expiry Expiry
	now    func() time.Time
	log    *slog.Logger
	boot   Boot
	// metrics counts faults, resubscriptions, cache lookups and each
	// writing script's time.
	metrics *metrics.Metrics

	touched  touches
	onCommit atomic.Pointer[func([]Change)]
	// cache holds recently read owners, kept current by the change stream
	// (listen); mine are this instance's writes the stream has not brought
	// yet, which a read of their owner waits for, so that a read after a
	// write sees it.
	cache       *snapCache
	mine        pendingWrites
	tabNumbers  *tabNumbers
	instance    string        // this instance's id among those sharing Redis
	presenceTTL time.Duration // how long its share of the presence counts
	wait        int           // replicas a write waits for (Options.Redis.Wait)
	rounds      sync.Map      // a primary's host:port → its *replicated (redis_wait.go)
	lastShare   atomicString  // the share last published
	ps          *redis.PubSub
	cancel      context.CancelFunc
	done        chan struct{}
	once        sync.Once
}

// redisClient is what the store asks of go-redis: a *redis.Client or a
// *redis.ClusterClient.
type redisClient interface {
	redis.UniversalClient
	AutoPipeline() (*redis.AutoPipeliner, error)
	AsyncAutoPipeline() (*redis.AutoPipeliner, error)
}

// OpenRedis connects to the Redis at url (redis://host:port/db), or to a
// Redis Cluster (redis://host1:port1?addr=host2:port2&addr=…, or the URL of
// any one of its nodes), counts this boot and subscribes to the changes of
// every instance.
func OpenRedis(ctx context.Context, url string, opts Options) (*Redis, error) {
	opts = opts.withDefaults()
	redis.SetLogger(redisLogger{opts.Logger})
	rdb, cluster, err := dialRedis(ctx, url, opts.Redis.Wait > 0)
	if err != nil {
		return nil, err
	}
	s := &Redis{
		rdb:     rdb,
		cluster: cluster,
		prefix:  "scopes:",
		limits:  opts.Limits,
		expiry:  opts.Expiry,
		now:     opts.Now,
		log:     opts.Logger,
		done:    make(chan struct{}),

		metrics: opts.Metrics,
		// Redis lets keys expire without a change: a snapshot is read
		// again after a minute.
		cache:      newSnapCache(32<<20, time.Minute, opts.Now),
		tabNumbers: newTabNumbers(opts.Now),

		presenceTTL: opts.Redis.PresenceTTL,
		wait:        opts.Redis.Wait,
	}
	s.cache.down() // nothing is cached until the stream is read
	s.cache.metrics = opts.Metrics
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		// Each node's errors are its own; a command the cluster could not
		// route is counted once more, under "cluster".
		c.OnNewNode(func(n *redis.Client) { n.AddHook(faultHook{opts.Metrics, n.Options().Addr}) })
		c.AddHook(faultHook{opts.Metrics, "cluster"})
	} else {
		s.rdb.AddHook(faultHook{opts.Metrics, s.rdb.(*redis.Client).Options().Addr})
	}
	id := make([]byte, 8)
	rand.Read(id)
	s.instance = hex.EncodeToString(id)
	n, err := s.rdb.Incr(ctx, s.prefix+"boots").Result()
	if err != nil {
		s.rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", url, err)
	}
	s.boot = Boot{Number: n, Time: s.now()}
	if s.ap, err = s.rdb.AutoPipeline(); err == nil {
		s.async, err = s.rdb.AsyncAutoPipeline()
	}
	if err != nil {
		s.rdb.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	s.ps = s.rdb.Subscribe(ctx, s.prefix+"changes")
	if _, err := s.ps.Receive(ctx); err != nil { // the subscription is in place
		s.rdb.Close()
		return nil, fmt.Errorf("redis subscribe: %w", err)
	}
	s.cache.up()
	subCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.listen(subCtx)
	return s, nil
}

// Close ends the subscription and the connections.
func (s *Redis) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.ps.Close()
		<-s.done
	})
	return s.rdb.Close()
}

// Boot returns the boot number (shared by all instances) and time.
func (s *Redis) Boot() Boot { return s.boot }

// Limits are the limits the store keeps to.
func (s *Redis) Limits() Limits { return s.limits }

// Health reports whether Redis answers.
func (s *Redis) Health(ctx context.Context) error {
	c, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return s.healthOf(ctx, s.rdb)
	}
	// Every primary must answer (and have its replicas); one that does not
	// may have been replaced: the slots are read again, so that its
	// replica, once promoted, is used without a restart.
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return s.healthOf(ctx, m) })
	if err != nil && !errors.Is(err, ErrNoReplica) {
		c.ReloadState(ctx)
		return redisFault(err)
	}
	return err
}

// healthOf is one Redis's (or one primary's) health: it answers, and with
// -redis-wait N it has N replicas connected.
func (s *Redis) healthOf(ctx context.Context, r redis.Cmdable) error {
	if s.wait == 0 {
		return r.Ping(ctx).Err()
	}
	info, err := r.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	if n := replicasIn(info); n < s.wait {
		return fmt.Errorf("%w: %d of %d replicas connected", ErrNoReplica, n, s.wait)
	}
	return nil
}

// replicasIn reads connected_slaves from INFO replication.
func replicasIn(info string) int {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// faultHook names ErrUnavailable in the error of every command that Redis
// did not answer, or answered that it cannot serve now, so that every
// caller can tell a lost Redis from a refusal of a script's.
// It counts each such error.
type faultHook struct {
	metrics *metrics.Metrics
	node    string // host:port, for the metrics
}

func (faultHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h faultHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := h.fault(next(ctx, cmd))
		if err != nil {
			cmd.SetErr(err)
		}
		return err
	}
}

func (h faultHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := redisFault(next(ctx, cmds)) // counted per command below
		if err == nil {
			// No command failed (next answers the first error). Asking each
			// anyway is not free: an autopipelined command's Err looks up
			// the goroutine it is asked on.
			return nil
		}
		for _, cmd := range cmds {
			if f := h.fault(cmd.Err()); f != cmd.Err() {
				cmd.SetErr(f)
			}
		}
		return err
	}
}

func (h faultHook) fault(err error) error {
	f := redisFault(err)
	if f != err {
		h.metrics.RedisError(h.node)
	}
	return f
}

// redisFault wraps ErrUnavailable around an error that is not an answer of
// Redis's (a refused or timed-out connection), or an answer that Redis
// cannot serve now (loading, or unable to persist).
func redisFault(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		return err
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		msg := reply.Error()
		for _, busy := range []string{"LOADING ", "MISCONF ", "READONLY ", "MASTERDOWN ", "TRYAGAIN ", "CLUSTERDOWN "} {
			if strings.HasPrefix(msg, busy) {
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
		}
		return err // redis.Nil, or a script's refusal
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// redisLogger sends go-redis's own log lines through the app's logger, at
// debug level: they repeat a failed dial per request, and the app logs
// when Redis goes away and comes back (the live hub's health watch).
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

func (s *Redis) ownerKey(o Owner) string {
	p := s.prefixOf(o)
	switch o.Scope {
	case User:
		return p + "o:user:" + o.UserID
	case Tab:
		return p + "o:tab:" + o.UserID + ":" + o.TabID
	}
	return p + "o:general"
}

// prefixOf is the prefix of o's keys: on a cluster it carries o's hash tag,
// so that every key of a user and its tabs is in one slot.
func (s *Redis) prefixOf(o Owner) string {
	switch {
	case !s.cluster:
		return s.prefix
	case o.Scope == General:
		return s.prefix + "{g}:"
	}
	return s.prefix + "{u:" + o.UserID + "}:"
}

// presencePrefix is the prefix of the presence keys (one slot on a
// cluster).
func (s *Redis) presencePrefix() string {
	if s.cluster {
		return s.prefix + "{presence}:"
	}
	return s.prefix
}
