package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
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
// Layout (prefix "scopes:" by default): a hash per owner, o:general,
// o:user:{id} and o:tab:{id}:{tab}, whose fields hold "version ms json";
// the counter seq; per user a hash m:{id} (created, returned, last kept) and a sorted
// set tabs:{id} of its tabs by last use; boots and secret. Every write is
// one Lua script, so it is atomic, and publishes its change on the channel
// changes. A standalone Redis (or a primary) is assumed, not a cluster.
type Redis struct {
	rdb *redis.Client
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
	// (listen); acked is the last version this instance's writes were
	// answered with, which a read waits for the stream to reach, so that a
	// read after a write sees it.
	cache       *snapCache
	acked       atomic.Int64
	tabNumbers  tabNumbers
	instance    string        // this instance's id among those sharing Redis
	presenceTTL time.Duration // how long its share of the presence counts
	lastShare   atomicString  // the share last published
	ps          *redis.PubSub
	cancel      context.CancelFunc
	done        chan struct{}
	once        sync.Once
}

// OpenRedis connects to the Redis at url (redis://host:port/db), counts
// this boot and subscribes to the changes of every instance.
func OpenRedis(ctx context.Context, url string, opts Options) (*Redis, error) {
	opts = opts.withDefaults()
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	// A Redis that is gone is answered within half a second, not after
	// go-redis's retries and backoff; the URL may set each of these.
	o.DialTimeout = cmp.Or(o.DialTimeout, 200*time.Millisecond)
	o.DialerRetries = cmp.Or(o.DialerRetries, 1) // one dial per attempt
	o.ReadTimeout = cmp.Or(o.ReadTimeout, time.Second)
	o.WriteTimeout = cmp.Or(o.WriteTimeout, time.Second)
	o.PoolTimeout = cmp.Or(o.PoolTimeout, 500*time.Millisecond)
	if o.MaxRetries == 0 {
		o.MaxRetries = 1 // a pooled connection that died with a restart
	}
	o.MaxRetryBackoff = cmp.Or(o.MaxRetryBackoff, 20*time.Millisecond)
	redis.SetLogger(redisLogger{opts.Logger})
	s := &Redis{
		rdb:    redis.NewClient(o),
		prefix: "scopes:",
		limits: opts.Limits,
		expiry: opts.Expiry,
		now:    opts.Now,
		log:    opts.Logger,
		done:   make(chan struct{}),

		metrics: opts.Metrics,
		// Redis lets keys expire without a change: a snapshot is read
		// again after a minute.
		cache:      newSnapCache(32<<20, time.Minute),
		tabNumbers: tabNumbers{m: map[string]tabNumber{}},

		presenceTTL: opts.PresenceTTL,
	}
	s.cache.reset() // nothing is cached until the stream is read
	s.cache.metrics = opts.Metrics
	s.rdb.AddHook(faultHook{opts.Metrics})
	id := make([]byte, 8)
	rand.Read(id)
	s.instance = hex.EncodeToString(id)
	n, err := s.rdb.Incr(ctx, s.prefix+"boots").Result()
	if err != nil {
		s.rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", o.Addr, err)
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
	s.caughtUp(ctx)
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

// Health reports whether Redis answers.
func (s *Redis) Health(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// faultHook names ErrUnavailable in the error of every command that Redis
// did not answer, or answered that it cannot serve now, so that every
// caller can tell a lost Redis from a refusal of a script's.
// It counts each such error.
type faultHook struct{ metrics *metrics.Metrics }

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
		h.metrics.RedisError()
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
		for _, busy := range []string{"LOADING ", "MISCONF ", "READONLY ", "MASTERDOWN ", "TRYAGAIN "} {
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

// Subscribe sets the function told of every committed change.
func (s *Redis) Subscribe(fn func([]Change)) { s.onCommit.Store(&fn) }

// message is a change as published on the changes channel: (scope, owner,
// key, version, origin), not the whole dictionary; a set carries its new
// value (which keeps every instance's cache current), a browser change the
// cookie's contents. The scripts publish it (publish in lua/prelude.lua) and
// Announce does; listen decodes it.
//
// On the wire it is its fields in this order, after the format's version,
// joined by the ASCII unit separator, which no key (printable), id, number
// or JSON text can hold; the value comes last. Numbers travel as text, which
// Lua's doubles cannot round. Every instance decodes every change, so this
// is cheaper than JSON at both ends (cjson in Redis, encoding/json here).
type message struct {
	Scope      Scope
	UserID     string
	TabID      string
	Key        string
	Op         Op
	Version    int64
	At         int64 // unix ms
	OriginUser string
	OriginTab  int
	OriginAPI  bool
	ClientID   string // the page load; for OpPresence, the instance
	Value      json.RawMessage
}

const (
	wireSep     = "\x1f"
	wireVersion = "1"
	wireFields  = 13
)

// encode is m as published.
func (m message) encode() string {
	api := "0"
	if m.OriginAPI {
		api = "1"
	}
	return strings.Join([]string{wireVersion, string(m.Scope), m.UserID, m.TabID, m.Key, string(m.Op),
		strconv.FormatInt(m.Version, 10), strconv.FormatInt(m.At, 10), m.OriginUser, strconv.Itoa(m.OriginTab),
		api, m.ClientID, string(m.Value)}, wireSep)
}

// decodeMessage reads a published message.
func decodeMessage(payload string) (message, error) {
	f := strings.SplitN(payload, wireSep, wireFields)
	if len(f) != wireFields || f[0] != wireVersion {
		// Not quoted: a payload may hold a person's value.
		return message{}, fmt.Errorf("not a message of format %s (%d fields, %d bytes)", wireVersion, len(f), len(payload))
	}
	m := message{Scope: Scope(f[1]), UserID: f[2], TabID: f[3], Key: f[4], Op: Op(f[5]),
		OriginUser: f[8], OriginAPI: f[10] == "1", ClientID: f[11]}
	var err error
	number := func(s string) int64 {
		if s == "" || err != nil {
			return 0
		}
		var n int64
		n, err = strconv.ParseInt(s, 10, 64)
		return n
	}
	m.Version, m.At, m.OriginTab = number(f[6]), number(f[7]), int(number(f[9]))
	if err != nil {
		return message{}, fmt.Errorf("a message's number: %w", err)
	}
	if f[12] != "" {
		m.Value = json.RawMessage(f[12])
	}
	return m, nil
}

// opEvict is a message the scripts send when a tab's keys went without a
// change of their own (evicted over the cap, copied into): every instance
// drops its cached snapshot. It goes no further than the cache.
const opEvict Op = "evict"

func messageOf(c Change) message {
	return message{Scope: c.Owner.Scope, UserID: c.Owner.UserID, TabID: c.Owner.TabID, Key: c.Key, Op: c.Op,
		Version: c.Version, At: c.At, OriginUser: c.Origin.UserID, OriginTab: c.Origin.Tab, OriginAPI: c.Origin.API,
		ClientID: c.Origin.ClientID, Value: c.Value}
}

func (m message) change() Change {
	return Change{Owner: Owner{Scope: m.Scope, UserID: m.UserID, TabID: m.TabID}, Op: m.Op, Key: m.Key,
		Version: m.Version, At: m.At, Value: m.Value,
		Origin: Origin{UserID: m.OriginUser, Tab: m.OriginTab, API: m.OriginAPI, ClientID: m.ClientID}}
}

// listen turns published changes into calls of the subscriber. Pub/sub
// loses what was sent while the subscription was down, so after it comes
// back the subscriber is told to resync.
func (s *Redis) listen(ctx context.Context) {
	defer close(s.done)
	for {
		msg, err := s.ps.ReceiveTimeout(ctx, 30*time.Second)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var nerr interface{ Timeout() bool }
			if errors.As(err, &nerr) && nerr.Timeout() {
				s.ps.Ping(ctx) // an idle subscription is checked, and reconnected if dead
				continue
			}
			s.cache.reset() // what is published now is missed
			s.log.Warn("redis subscription lost; reconnecting", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		var changes []Change
		switch m := msg.(type) {
		case *redis.Subscription:
			s.metrics.Resubscribed()
			s.cache.reset()
			s.caughtUp(ctx)
			changes = []Change{{Op: OpResync}} // back after a loss
		case *redis.Message:
			p, err := decodeMessage(m.Payload)
			if err != nil {
				s.cache.reset() // it may have changed a cached owner
				s.log.Error("redis: a change that does not decode", "error", err)
				continue
			}
			if p.Op == OpPresence && p.ClientID == s.instance {
				continue // our own share
			}
			c := p.change()
			switch {
			case c.Op == opEvict:
				s.tabNumbers.forget(c.Owner.UserID, c.Owner.TabID) // an evicted tab comes back as a new one
				s.cache.apply(c.Version, nil, []Owner{c.Owner})
				continue
			case c.Op == OpSet || c.Op == OpDelete || c.Op == OpClear:
				if c.Owner.Scope != Browser { // a stored change: in version order
					s.cache.apply(c.Version, []Change{c}, nil)
				}
			}
			changes = []Change{c}
		default:
			continue
		}
		if fn := s.onCommit.Load(); fn != nil {
			(*fn)(changes)
		}
	}
}

// caughtUp tells the cache, once subscribed, the sequence of the moment:
// every change after it will come on the stream, so snapshots read from now
// on can be cached before anyone writes. Without it the cache waits for
// the next change.
func (s *Redis) caughtUp(ctx context.Context) {
	seq, err := s.rdb.Get(ctx, s.prefix+"seq").Int64()
	if errors.Is(err, redis.Nil) {
		seq, err = 0, nil
	}
	if err != nil {
		s.log.Debug("redis: the cache waits for the next change", "error", err)
		return
	}
	s.cache.apply(seq, nil, nil)
}

// Announce publishes a change this store does not keep (browser scope),
// without waiting for Redis: the cookie that holds it is the truth, and the
// announcement only tells the browser's other pages. A failure is logged.
func (s *Redis) Announce(ctx context.Context, c Change) error {
	cmd := s.async.Publish(ctx, s.prefix+"changes", messageOf(c).encode())
	go func() {
		// A lost Redis is told once, by the live hub's health watch.
		if err := cmd.Err(); err != nil && FaultOf(err) == nil {
			s.log.Warn("announce a browser change", "error", err)
		}
	}()
	return nil
}

func (s *Redis) ownerKey(o Owner) string {
	switch o.Scope {
	case User:
		return s.prefix + "o:user:" + o.UserID
	case Tab:
		return s.prefix + "o:tab:" + o.UserID + ":" + o.TabID
	}
	return s.prefix + "o:general"
}

// The scripts, one file per operation after the shared prelude (lua/). Each
// is atomic, and each that writes publishes its changes.
var (
	applyScript    = script("apply")
	deleteScript   = script("delete")
	clearScript    = script("clear")
	listScript     = script("list")
	copyScript     = script("copy")
	tabScript      = script("tab")
	touchScript    = script("touch")
	presenceScript = script("presence")
)

//go:embed lua/*.lua
var luaFiles embed.FS

func script(name string) *redis.Script {
	prelude, err := luaFiles.ReadFile("lua/prelude.lua")
	if err != nil {
		panic(err)
	}
	body, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(err)
	}
	return redis.NewScript(string(prelude) + string(body))
}

// common returns the six ARGV every writing script starts with.
func (s *Redis) common() []any {
	return []any{s.prefix, s.now().UnixMilli(), s.expiry.UserTTL.Milliseconds(), s.expiry.OneShot.Milliseconds(),
		s.expiry.TabTTL.Milliseconds(), s.limits.TabsPerUser}
}

// redisErr maps the scripts' refusals to the store's errors.
func redisErr(err error) error {
	switch {
	case err == nil:
		return nil
	case strings.Contains(err.Error(), "TOOMANYKEYS"):
		return ErrTooManyKeys
	case strings.Contains(err.Error(), "TABEXISTS"):
		return ErrTabExists
	}
	return err
}

// originArgs are the ARGV that name an origin to a script.
func originArgs(o Origin) []any {
	api := "0"
	if o.API {
		api = "1"
	}
	return []any{o.UserID, o.TabID, api, o.ClientID}
}

// ifArg is a version condition as a script reads it.
func ifArg(ifVersion int64) string {
	if ifVersion == 0 {
		return ""
	}
	return strconv.FormatInt(ifVersion, 10)
}

// conflict turns a script's CONFLICT refusal into a *ConflictError with the
// key as it is now.
func (s *Redis) conflict(ctx context.Context, err error, o Owner, key string) error {
	if err == nil || !strings.Contains(err.Error(), "CONFLICT") {
		return err
	}
	current, gerr := s.get(ctx, o, key) // as it is now, not as cached
	if gerr != nil && !errors.Is(gerr, ErrNotFound) {
		return gerr
	}
	current.Key = key
	return &ConflictError{Current: current}
}

// atomicString is a string read and swapped by several goroutines.
type atomicString struct{ v atomic.Pointer[string] }

func (a *atomicString) Swap(s string) string {
	if old := a.v.Swap(&s); old != nil {
		return *old
	}
	return ""
}

func (a *atomicString) Store(s string) { a.v.Store(&s) }

// parseField splits a stored field, "version ms @origin json" (or, from
// before provenance, "version ms json"), into its entry.
func parseField(key, raw string) (Entry, error) {
	ver, rest, ok1 := strings.Cut(raw, " ")
	at, value, ok2 := strings.Cut(rest, " ")
	v, err1 := strconv.ParseInt(ver, 10, 64)
	ms, err2 := strconv.ParseInt(at, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return Entry{}, fmt.Errorf("malformed field %q", key)
	}
	e := Entry{Key: key, Version: v, UpdatedAt: time.UnixMilli(ms)}
	if token, json, ok := strings.Cut(value, " "); ok && strings.HasPrefix(token, "@") {
		value = json
		kind, rest, _ := strings.Cut(token[1:], ":")
		tab, user, _ := strings.Cut(rest, ":")
		e.Origin.UserID, e.Origin.API = user, kind == "a"
		e.Origin.Tab, _ = strconv.Atoi(tab)
	}
	e.Value = json.RawMessage(value)
	return e, nil
}

// List returns every key of owner, sorted, with the sequence of the moment:
// from the cache once the change stream has brought it up to this
// instance's last acknowledged write, else read (and cached if it can be).
func (s *Redis) List(ctx context.Context, o Owner) (Snapshot, error) {
	if snap, ok := s.cached(ctx, o); ok {
		return snap, nil
	}
	snap, err := s.list(ctx, o)
	if err != nil {
		return Snapshot{}, err
	}
	s.cache.fill(o, snap)
	return snap, nil
}

// View returns what w shows of owner, as List reads it.
func (s *Redis) View(ctx context.Context, o Owner, w Window) (View, error) {
	if s.caughtUpWithMe(ctx) {
		if v, ok := s.cache.view(o, w); ok {
			return v, nil
		}
	}
	snap, err := s.list(ctx, o)
	if err != nil {
		return View{}, err
	}
	s.cache.fill(o, snap)
	return snap.View(w), nil
}

// streamWait is how long a read waits for the change stream to bring the
// cache up to this instance's last write before it reads Redis instead.
const streamWait = 20 * time.Millisecond

// cached returns o's cached snapshot once the stream has caught up with
// this instance's writes.
func (s *Redis) cached(ctx context.Context, o Owner) (Snapshot, bool) {
	if !s.caughtUpWithMe(ctx) {
		return Snapshot{}, false
	}
	return s.cache.get(o)
}

// caughtUpWithMe waits, at most streamWait, until the change stream has
// brought the cache this instance's last acknowledged write; if it has
// not, the read is counted a miss and goes to Redis.
func (s *Redis) caughtUpWithMe(ctx context.Context) bool {
	if s.cache.reached(ctx, s.acked.Load(), streamWait) {
		return true
	}
	s.metrics.CacheLookup(false)
	return false
}

// answered records the version a write of this instance was answered with.
func (s *Redis) answered(v int64) {
	for {
		old := s.acked.Load()
		if v <= old || s.acked.CompareAndSwap(old, v) {
			return
		}
	}
}

func (s *Redis) list(ctx context.Context, o Owner) (Snapshot, error) {
	res, err := listScript.Run(ctx, s.ap, []string{s.ownerKey(o)}, s.prefix).Slice()
	if err != nil {
		return Snapshot{}, fmt.Errorf("list %s: %w", o, err)
	}
	var snap Snapshot
	snap.Version, _ = strconv.ParseInt(fmt.Sprint(res[0]), 10, 64)
	pairs, _ := res[1].([]any)
	for i := 0; i+1 < len(pairs); i += 2 {
		e, err := parseField(fmt.Sprint(pairs[i]), fmt.Sprint(pairs[i+1]))
		if err != nil {
			return Snapshot{}, fmt.Errorf("list %s: %w", o, err)
		}
		snap.Entries = append(snap.Entries, e)
	}
	sortEntries(snap.Entries)
	return snap, nil
}

// Get returns one key of owner, or ErrNotFound.
func (s *Redis) Get(ctx context.Context, o Owner, key string) (Entry, error) {
	if snap, ok := s.cached(ctx, o); ok {
		if i, found := search(snap.Entries, key); found {
			return snap.Entries[i], nil
		}
		return Entry{}, ErrNotFound
	}
	return s.get(ctx, o, key)
}

// get reads one key of owner from Redis.
func (s *Redis) get(ctx context.Context, o Owner, key string) (Entry, error) {
	raw, err := s.ap.HGet(ctx, s.ownerKey(o), key).Result()
	if errors.Is(err, redis.Nil) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("get %s/%s: %w", o, key, err)
	}
	return parseField(key, raw)
}

// Apply runs several sets and increments as one atomic script.
func (s *Redis) Apply(ctx context.Context, origin Origin, muts ...Mutation) ([]Entry, error) {
	if err := s.limits.Check(muts...); err != nil {
		return nil, err
	}
	keys := make([]string, len(muts))
	args := append(s.common(), s.limits.KeysPerOwner)
	args = append(append(args, originArgs(origin)...), len(muts))
	for i, m := range muts {
		keys[i] = s.ownerKey(m.Owner)
		kind := "s"
		if m.Increment {
			kind = "i"
		}
		args = append(args, string(m.Owner.Scope), m.Owner.UserID, m.Owner.TabID, m.Key, kind, string(m.Value), ifArg(m.IfVersion))
	}
	start := time.Now()
	res, err := applyScript.Run(ctx, s.ap, keys, args...).Slice()
	s.metrics.Commit(1, time.Since(start))
	if err != nil {
		if i := conflictIndex(err); i >= 0 && i < len(muts) {
			return nil, s.conflict(ctx, err, muts[i].Owner, muts[i].Key)
		}
		return nil, redisErr(err)
	}
	if len(res) != len(muts)+2 {
		return nil, fmt.Errorf("apply: unexpected answer %v", res)
	}
	seq, err := strconv.ParseInt(fmt.Sprint(res[len(muts)+1]), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("apply: sequence %v: %w", res[len(muts)+1], err)
	}
	s.answered(seq)
	s.numbered(origin)
	for _, m := range muts {
		if m.Owner.Scope != General {
			s.touched.wrote(m.Owner.UserID)
		}
	}
	tab, _ := res[0].(int64)
	kept := Origin{UserID: origin.UserID, Tab: int(tab), API: origin.API}
	now := time.UnixMilli(args[1].(int64)) // the time the script stored
	entries := make([]Entry, len(muts))
	for i, r := range res[1 : len(muts)+1] {
		pair, _ := r.([]any)
		if len(pair) != 2 {
			return nil, fmt.Errorf("apply: unexpected answer %v", r)
		}
		version, err := strconv.ParseInt(fmt.Sprint(pair[0]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("apply: version %v: %w", pair[0], err)
		}
		entries[i] = Entry{Key: muts[i].Key, Version: version, Value: json.RawMessage(fmt.Sprint(pair[1])), UpdatedAt: now, Origin: kept}
	}
	return entries, nil
}

// conflictIndex is the mutation a CONFLICT refusal names (from 0), or -1.
func conflictIndex(err error) int {
	_, after, ok := strings.Cut(err.Error(), "CONFLICT ")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(strings.TrimSpace(after))
	if err != nil {
		return -1
	}
	return i - 1
}

// Delete removes key from owner, or returns ErrNotFound; with ifVersion,
// only at that version.
func (s *Redis) Delete(ctx context.Context, o Owner, key string, origin Origin, ifVersion int64) (int64, error) {
	args := append(s.common(), string(o.Scope), o.UserID, o.TabID, key)
	args = append(append(args, originArgs(origin)...), ifArg(ifVersion))
	start := time.Now()
	version, err := deleteScript.Run(ctx, s.ap, []string{s.ownerKey(o)}, args...).Int64()
	s.metrics.Commit(1, time.Since(start))
	if err != nil {
		return 0, fmt.Errorf("delete %s/%s: %w", o, key, s.conflict(ctx, err, o, key))
	}
	s.numbered(origin)
	if version == 0 {
		return 0, fmt.Errorf("delete %s/%s: %w", o, key, ErrNotFound)
	}
	s.answered(version)
	return version, nil
}

// Clear removes every key of owner and returns how many there were.
func (s *Redis) Clear(ctx context.Context, o Owner, origin Origin) (int, int64, error) {
	args := append(s.common(), string(o.Scope), o.UserID, o.TabID)
	args = append(args, originArgs(origin)...)
	start := time.Now()
	res, err := clearScript.Run(ctx, s.ap, []string{s.ownerKey(o)}, args...).Int64Slice()
	s.metrics.Commit(1, time.Since(start))
	if err != nil || len(res) != 2 {
		return 0, 0, fmt.Errorf("clear %s: %w %v", o, err, res)
	}
	s.answered(res[1])
	s.numbered(origin)
	return int(res[0]), res[1], nil
}

// CopyTab copies one tab's keys to a new, empty tab of the same user.
func (s *Redis) CopyTab(ctx context.Context, userID, fromTab, toTab string) error {
	args := append(s.common(), userID, toTab)
	keys := []string{s.ownerKey(TabOwner(userID, fromTab)), s.ownerKey(TabOwner(userID, toTab))}
	seq, err := copyScript.Run(ctx, s.ap, keys, args...).Int64()
	if err != nil {
		return fmt.Errorf("copy tab %s to %s: %w", fromTab, toTab, redisErr(err))
	}
	s.answered(seq)
	s.touched.wrote(userID)
	return nil
}

// numbered tells the touches that a write by origin may have made its user:
// a page's write numbers its tab, which makes the user (origin_of in
// lua/prelude.lua); a write through the API makes none.
func (s *Redis) numbered(origin Origin) {
	if !origin.API && origin.TabID != "" {
		s.touched.wrote(origin.UserID)
	}
}

// TabNumber returns the number of a tab in its browser, numbering it only
// the first time it is seen.
func (s *Redis) TabNumber(ctx context.Context, userID, tabID string) (int, error) {
	if s.cache.reached(ctx, s.acked.Load(), streamWait) { // evictions of this instance's writes are known
		if n, ok := s.tabNumbers.get(userID, tabID); ok {
			return n, nil
		}
	}
	n, err := s.ap.HGet(ctx, s.prefix+"tn:"+userID, tabID).Int()
	if err == nil {
		s.tabNumbers.put(userID, tabID, n)
		return n, nil
	}
	if !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("tab number: %w", err)
	}
	if n, err = tabScript.Run(ctx, s.ap, nil, append(s.common(), userID, tabID)...).Int(); err != nil {
		return 0, fmt.Errorf("tab number: %w", err)
	}
	s.touched.wrote(userID)
	s.tabNumbers.put(userID, tabID, n)
	return n, nil
}

// tabNumbers remembers the tab numbers this instance learnt, for a minute
// each (a number never changes while its user exists; after a user's
// expiry the same ids would be numbered again).
type tabNumbers struct {
	mu sync.Mutex
	m  map[string]tabNumber
}

type tabNumber struct {
	n  int
	at time.Time
}

const tabNumbersMax = 100_000

func (t *tabNumbers) get(userID, tabID string) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[userID+"/"+tabID]
	if !ok || time.Since(e.at) > time.Minute {
		return 0, false
	}
	return e.n, true
}

func (t *tabNumbers) forget(userID, tabID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, userID+"/"+tabID)
}

func (t *tabNumbers) put(userID, tabID string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= tabNumbersMax {
		clear(t.m) // rare: they are read again as needed
	}
	t.m[userID+"/"+tabID] = tabNumber{n, time.Now()}
}

// SharePresence keeps this instance's pages for Options.PresenceTTL (an
// instance that dies stops counting after it), tells the
// other instances when they changed, and returns every live instance's
// pages together.
func (s *Redis) SharePresence(ctx context.Context, mine Presence) (Presence, error) {
	share, err := json.Marshal(mine)
	if err != nil {
		return nil, err
	}
	changed := "0"
	if s.lastShare.Swap(string(share)) != string(share) {
		changed = "1"
	}
	res, err := presenceScript.Run(ctx, s.rdb, nil,
		append(s.common(), s.instance, s.presenceTTL.Milliseconds(), string(share), changed)...).StringSlice()
	if err != nil {
		s.lastShare.Store("") // tell them again next time
		return nil, fmt.Errorf("share presence: %w", err)
	}
	all := Presence{}
	all.Add(mine)
	for _, raw := range res {
		var other Presence
		if json.Unmarshal([]byte(raw), &other) == nil {
			all.Add(other)
		}
	}
	return all, nil
}

// Touch refreshes the TTLs of a user (and tab) at most once per
// touchInterval, or at once when the cookie first comes back (as Store).
func (s *Redis) Touch(ctx context.Context, userID, tabID string, returning bool) error {
	now := s.now()
	due, writes := s.touched.due(userID, tabID, now, returning)
	if !due {
		return nil
	}
	ret := "0"
	if returning {
		ret = "1"
	}
	found, err := touchScript.Run(ctx, s.ap, nil, append(s.common(), userID, tabID, ret)...).Int()
	if err != nil {
		return fmt.Errorf("touch %s: %w", userID, err)
	}
	s.touched.done(userID, tabID, now, returning, found == 1, writes)
	return nil
}

// Secret returns the server secret kept in Redis, shared by all instances,
// generating it the first time.
func (s *Redis) Secret(ctx context.Context) (string, bool, error) {
	b := make([]byte, 32)
	rand.Read(b)
	candidate := hex.EncodeToString(b)
	set, err := s.rdb.SetNX(ctx, s.prefix+"secret", candidate, 0).Result()
	if err != nil {
		return "", false, fmt.Errorf("keep generated secret: %w", err)
	}
	if set {
		return candidate, true, nil
	}
	v, err := s.rdb.Get(ctx, s.prefix+"secret").Result()
	return v, false, err
}
