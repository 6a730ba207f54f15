package store

import (
	"context"
	"crypto/rand"
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
)

// Redis keeps the general, user and tab scopes in Redis, so that several
// instances of the app can share them. It has the semantics of Store: one
// field per key with a version from one database-wide sequence, atomic
// increments, caps, tab copies, expiry (here by Redis TTLs, refreshed on
// use), and a report of every committed change, from any instance.
//
// Layout (prefix "scopes:" by default): a hash per owner, o:general,
// o:user:{id} and o:tab:{id}:{tab}, whose fields hold "version ms json";
// the counter seq; per user a hash m:{id} (created, returned) and a sorted
// set tabs:{id} of its tabs by last use; boots and secret. Every write is
// one Lua script, so it is atomic, and publishes its change on the channel
// changes. A standalone Redis (or a primary) is assumed, not a cluster.
type Redis struct {
	rdb    *redis.Client
	prefix string
	limits Limits
	expiry Expiry
	now    func() time.Time
	log    *slog.Logger
	boot   Boot

	touched  touches
	onCommit atomic.Pointer[func([]Change)]
	ps       *redis.PubSub
	cancel   context.CancelFunc
	done     chan struct{}
	once     sync.Once
}

// OpenRedis connects to the Redis at url (redis://host:port/db), counts
// this boot and subscribes to the changes of every instance.
func OpenRedis(ctx context.Context, url string, opts Options) (*Redis, error) {
	opts = opts.withDefaults()
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	s := &Redis{
		rdb:    redis.NewClient(o),
		prefix: "scopes:",
		limits: opts.Limits,
		expiry: opts.Expiry,
		now:    opts.Now,
		log:    opts.Logger,
		done:   make(chan struct{}),
	}
	n, err := s.rdb.Incr(ctx, s.prefix+"boots").Result()
	if err != nil {
		s.rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", o.Addr, err)
	}
	s.boot = Boot{Number: n, Time: s.now()}
	s.ps = s.rdb.Subscribe(ctx, s.prefix+"changes")
	if _, err := s.ps.Receive(ctx); err != nil { // the subscription is in place
		s.rdb.Close()
		return nil, fmt.Errorf("redis subscribe: %w", err)
	}
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

// Ping reports whether Redis answers.
func (s *Redis) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Subscribe sets the function told of every committed change.
func (s *Redis) Subscribe(fn func([]Change)) { s.onCommit.Store(&fn) }

// message is a change as published: (scope, owner, key, version, origin),
// not the whole dictionary. Browser changes carry the cookie's contents.
type message struct {
	Scope   Scope           `json:"s"`
	UserID  string          `json:"u,omitempty"`
	TabID   string          `json:"t,omitempty"`
	Key     string          `json:"k,omitempty"`
	Op      Op              `json:"o"`
	Version int64           `json:"v"`
	Origin  string          `json:"g,omitempty"`
	Value   json.RawMessage `json:"x,omitempty"`
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
			changes = []Change{{Op: OpResync}} // back after a loss
		case *redis.Message:
			var p message
			if json.Unmarshal([]byte(m.Payload), &p) != nil {
				continue
			}
			changes = []Change{{Owner: Owner{Scope: p.Scope, UserID: p.UserID, TabID: p.TabID},
				Op: p.Op, Key: p.Key, Version: p.Version, Origin: p.Origin, Value: p.Value}}
		default:
			continue
		}
		if fn := s.onCommit.Load(); fn != nil {
			(*fn)(changes)
		}
	}
}

// Announce publishes a change this store does not keep (browser scope).
func (s *Redis) Announce(ctx context.Context, c Change) error {
	b, _ := json.Marshal(message{Scope: c.Owner.Scope, UserID: c.Owner.UserID, TabID: c.Owner.TabID,
		Key: c.Key, Op: c.Op, Version: c.Version, Origin: c.Origin, Value: c.Value})
	return s.rdb.Publish(ctx, s.prefix+"changes", b).Err()
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

// luaPrelude is shared by the scripts that write: the expiry and tab
// bookkeeping of an owner. ARGV[1..6] are always: prefix, now (ms),
// user TTL, one-shot TTL, tab TTL (ms), tabs per user.
const luaPrelude = `
local p, now = ARGV[1], tonumber(ARGV[2])
local userTTL, oneShot, tabTTL, maxTabs = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local function ttlOf(uid)
  if redis.call('HGET', p .. 'm:' .. uid, 'r') == '1' then return userTTL end
  return oneShot
end
-- keep refreshes the TTLs of a user (and tab) and caps the user's tabs.
local function keep(scope, uid, tid)
  if scope == 'general' then return end
  local ttl = ttlOf(uid)
  local mk = p .. 'm:' .. uid
  redis.call('HSETNX', mk, 'c', now)
  redis.call('PEXPIRE', mk, ttl)
  redis.call('PEXPIRE', p .. 'o:user:' .. uid, ttl)
  local z = p .. 'tabs:' .. uid
  redis.call('PEXPIRE', z, ttl)
  if scope ~= 'tab' then return end
  redis.call('PEXPIRE', p .. 'o:tab:' .. uid .. ':' .. tid, tabTTL)
  local added = redis.call('ZADD', z, now, tid)
  redis.call('PEXPIRE', z, ttl) -- again: ZADD may have just made the set
  if added == 1 then
    local over = redis.call('ZCARD', z) - maxTabs
    if over > 0 then
      for _, old in ipairs(redis.call('ZRANGE', z, 0, over)) do
        if over > 0 and old ~= tid then
          redis.call('DEL', p .. 'o:tab:' .. uid .. ':' .. old)
          redis.call('ZREM', z, old)
          over = over - 1
        end
      end
    end
  end
end
local function publish(scope, uid, tid, key, op, ver, origin)
  redis.call('PUBLISH', p .. 'changes', cjson.encode({s = scope, u = uid, t = tid, k = key, o = op, v = ver, g = origin}))
end
`

// applyScript: KEYS are the owners' hashes; after the six common ARGV:
// max keys, origin, count, then per mutation scope, user, tab, key, kind
// ("s" set, "i" increment), value.
var applyScript = redis.NewScript(luaPrelude + `
local maxKeys, origin, n = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local function m(i, j) return ARGV[9 + (i - 1) * 6 + j] end
-- All or nothing: room for every new key first (two new keys of one
-- owner need room for two).
local added = {}
for i = 1, n do
  if redis.call('HEXISTS', KEYS[i], m(i, 4)) == 0 then
    added[KEYS[i]] = (added[KEYS[i]] or 0) + 1
    if redis.call('HLEN', KEYS[i]) + added[KEYS[i]] > maxKeys then
      return redis.error_reply('TOOMANYKEYS')
    end
  end
end
local out = {}
for i = 1, n do
  local k, scope, uid, tid, f, kind, v = KEYS[i], m(i, 1), m(i, 2), m(i, 3), m(i, 4), m(i, 5), m(i, 6)
  if kind == 'i' then
    local c = 0
    local cur = redis.call('HGET', k, f)
    if cur then
      local j = string.match(cur, '^%S+ %S+ (.*)$')
      if j and string.match(j, '^%-?%d+$') then c = tonumber(j) end
    end
    v = string.format('%d', c + 1)
  end
  local ver = redis.call('INCR', p .. 'seq')
  redis.call('HSET', k, f, ver .. ' ' .. now .. ' ' .. v)
  keep(scope, uid, tid)
  publish(scope, uid, tid, f, 'set', ver, origin)
  out[i] = {ver, v}
end
return out
`)

// deleteScript: KEYS[1] the owner; ARGV after the common six: scope, user,
// tab, key, origin. Returns the new version, or 0 if there was no key.
var deleteScript = redis.NewScript(luaPrelude + `
if redis.call('HDEL', KEYS[1], ARGV[10]) == 0 then return 0 end
local ver = redis.call('INCR', p .. 'seq')
publish(ARGV[7], ARGV[8], ARGV[9], ARGV[10], 'delete', ver, ARGV[11])
return ver
`)

// clearScript: like deleteScript without the key; returns the count.
var clearScript = redis.NewScript(luaPrelude + `
local n = redis.call('HLEN', KEYS[1])
if n == 0 then return 0 end
redis.call('DEL', KEYS[1])
local ver = redis.call('INCR', p .. 'seq')
publish(ARGV[7], ARGV[8], ARGV[9], '', 'clear', ver, ARGV[10])
return n
`)

// listScript returns the sequence and the owner's fields at one moment.
var listScript = redis.NewScript(`
return {redis.call('GET', ARGV[1] .. 'seq') or '0', redis.call('HGETALL', KEYS[1])}
`)

// copyScript: KEYS the source and new tab; ARGV after the common six: user,
// new tab id.
var copyScript = redis.NewScript(luaPrelude + `
local uid, tid = ARGV[7], ARGV[8]
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('ZSCORE', p .. 'tabs:' .. uid, tid) then
  return redis.error_reply('TABEXISTS')
end
local all = redis.call('HGETALL', KEYS[1])
if #all > 0 then
  local ver = redis.call('INCR', p .. 'seq')
  for i = 1, #all, 2 do
    redis.call('HSET', KEYS[2], all[i], ver .. ' ' .. now .. ' ' .. string.match(all[i + 1], '^%S+ %S+ (.*)$'))
  end
end
keep('tab', uid, tid)
return 1
`)

// touchScript: ARGV after the common six: user, tab (or ”), returning.
var touchScript = redis.NewScript(luaPrelude + `
local uid, tid = ARGV[7], ARGV[8]
if redis.call('EXISTS', p .. 'm:' .. uid) == 0 then return 0 end
if ARGV[9] == '1' then redis.call('HSET', p .. 'm:' .. uid, 'r', '1') end
if tid ~= '' and redis.call('ZSCORE', p .. 'tabs:' .. uid, tid) then
  keep('tab', uid, tid)
else
  keep('user', uid, '')
end
return 1
`)

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

// parseField splits a stored field into its entry.
func parseField(key, raw string) (Entry, error) {
	ver, rest, ok1 := strings.Cut(raw, " ")
	at, value, ok2 := strings.Cut(rest, " ")
	v, err1 := strconv.ParseInt(ver, 10, 64)
	ms, err2 := strconv.ParseInt(at, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return Entry{}, fmt.Errorf("malformed field %q", key)
	}
	return Entry{Key: key, Value: json.RawMessage(value), Version: v, UpdatedAt: time.UnixMilli(ms)}, nil
}

// List returns every key of owner, sorted, with the sequence of the moment.
func (s *Redis) List(ctx context.Context, o Owner) (Snapshot, error) {
	res, err := listScript.Run(ctx, s.rdb, []string{s.ownerKey(o)}, s.prefix).Slice()
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
	raw, err := s.rdb.HGet(ctx, s.ownerKey(o), key).Result()
	if errors.Is(err, redis.Nil) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("get %s/%s: %w", o, key, err)
	}
	return parseField(key, raw)
}

// Set stores value under key.
func (s *Redis) Set(ctx context.Context, o Owner, key string, value json.RawMessage, origin string) (Entry, error) {
	entries, err := s.Apply(ctx, origin, Mutation{Owner: o, Key: key, Value: value})
	if err != nil {
		return Entry{}, fmt.Errorf("set %s/%s: %w", o, key, err)
	}
	return entries[0], nil
}

// Increment adds one to the integer under key.
func (s *Redis) Increment(ctx context.Context, o Owner, key string, origin string) (Entry, error) {
	entries, err := s.Apply(ctx, origin, Mutation{Owner: o, Key: key, Increment: true})
	if err != nil {
		return Entry{}, fmt.Errorf("increment %s/%s: %w", o, key, err)
	}
	return entries[0], nil
}

// Apply runs several sets and increments as one atomic script.
func (s *Redis) Apply(ctx context.Context, origin string, muts ...Mutation) ([]Entry, error) {
	if err := checkMutations(muts); err != nil {
		return nil, err
	}
	keys := make([]string, len(muts))
	args := append(s.common(), s.limits.KeysPerOwner, origin, len(muts))
	for i, m := range muts {
		keys[i] = s.ownerKey(m.Owner)
		kind := "s"
		if m.Increment {
			kind = "i"
		}
		args = append(args, string(m.Owner.Scope), m.Owner.UserID, m.Owner.TabID, m.Key, kind, string(m.Value))
	}
	res, err := applyScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return nil, redisErr(err)
	}
	now := time.UnixMilli(args[1].(int64)) // the time the script stored
	entries := make([]Entry, len(muts))
	for i, r := range res {
		pair := r.([]any)
		entries[i] = Entry{Key: muts[i].Key, Version: pair[0].(int64), Value: json.RawMessage(fmt.Sprint(pair[1])), UpdatedAt: now}
	}
	return entries, nil
}

// Delete removes key from owner, or returns ErrNotFound.
func (s *Redis) Delete(ctx context.Context, o Owner, key string, origin string) error {
	args := append(s.common(), string(o.Scope), o.UserID, o.TabID, key, origin)
	ver, err := deleteScript.Run(ctx, s.rdb, []string{s.ownerKey(o)}, args...).Int64()
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", o, key, err)
	}
	if ver == 0 {
		return fmt.Errorf("delete %s/%s: %w", o, key, ErrNotFound)
	}
	return nil
}

// Clear removes every key of owner and returns how many there were.
func (s *Redis) Clear(ctx context.Context, o Owner, origin string) (int, error) {
	args := append(s.common(), string(o.Scope), o.UserID, o.TabID, origin)
	n, err := clearScript.Run(ctx, s.rdb, []string{s.ownerKey(o)}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("clear %s: %w", o, err)
	}
	return n, nil
}

// CopyTab copies one tab's keys to a new, empty tab of the same user.
func (s *Redis) CopyTab(ctx context.Context, userID, fromTab, toTab string, origin string) error {
	args := append(s.common(), userID, toTab)
	keys := []string{s.ownerKey(TabOwner(userID, fromTab)), s.ownerKey(TabOwner(userID, toTab))}
	if err := copyScript.Run(ctx, s.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("copy tab %s to %s: %w", fromTab, toTab, redisErr(err))
	}
	return nil
}

// Touch refreshes the TTLs of a user (and tab) at most once per
// touchInterval, or at once when the cookie first comes back (as Store).
func (s *Redis) Touch(ctx context.Context, userID, tabID string, returning bool) error {
	now := s.now()
	if !s.touched.due(userID, tabID, now, returning) {
		return nil
	}
	ret := "0"
	if returning {
		ret = "1"
	}
	found, err := touchScript.Run(ctx, s.rdb, nil, append(s.common(), userID, tabID, ret)...).Int()
	if err != nil {
		return fmt.Errorf("touch %s: %w", userID, err)
	}
	s.touched.done(userID, tabID, now, returning && found == 1)
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
