package store

// The scripts: how a write runs on Redis (sent again while its slot moves,
// confirmed by replicas with -redis-wait), and the scripts themselves, one
// file per operation after the shared prelude (lua/).

import (
	"cmp"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisWaitTimeout is how long a write waits for its replicas (-redis-wait)
// before it is answered with ErrNoReplica: within the connections' read
// timeout.
const redisWaitTimeout = time.Second

// slotMoveWait is how long a script waits for a slot that a resharding is
// moving (TRYAGAIN, ASK) or has just moved (MOVED) before the write is
// refused as a fault: a slot of a few thousand keys moves within it.
const slotMoveWait = time.Second

// run runs a writing script (whileSlotMoves).
func (s *Redis) run(ctx context.Context, sc *luaScript, keys []string, args ...any) *redis.Cmd {
	return s.whileSlotMoves(ctx, func() *redis.Cmd { return s.runOnce(ctx, sc, keys, args...) })
}

// whileSlotMoves runs a script. On a cluster, a script is refused whole
// while its slot moves (see declared): it is sent again, with a growing
// pause, for up to slotMoveWait, the slots read again after a MOVED. A
// refusal left after that, or a fault, is ErrUnavailable (a 503), and the
// slots are read again for the next.
func (s *Redis) whileSlotMoves(ctx context.Context, script func() *redis.Cmd) *redis.Cmd {
	cmd := script()
	c, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return cmd
	}
	pause, deadline := 5*time.Millisecond, time.Now().Add(slotMoveWait)
	for slotMoving(cmd.Err()) && time.Now().Before(deadline) && ctx.Err() == nil {
		s.metrics.Redirected()
		if redis.HasErrorPrefix(cmd.Err(), "MOVED") {
			c.ReloadState(ctx)
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
		cmd = script()
	}
	if slotMoving(cmd.Err()) {
		cmd.SetErr(fmt.Errorf("%w: %w", ErrUnavailable, cmd.Err()))
	}
	if FaultOf(cmd.Err()) != nil {
		c.ReloadState(ctx)
	}
	return cmd
}

// slotMoving says a cluster node refused a script, without running it,
// because its slot is moving or has moved.
func slotMoving(err error) bool {
	for _, refusal := range []string{"MOVED ", "ASK ", "TRYAGAIN "} {
		if redis.HasErrorPrefix(err, refusal) {
			return true
		}
	}
	return false
}

// declared are a script's keys together with the keys of its slot that the
// scripts name themselves (lua/prelude.lua): the sequence, and for a
// user's slot its bookkeeping and the tabs named. A cluster checks that a
// script's declared keys are all on the node before it runs it, so that
// while a resharding moves the slot key by key the script is refused whole
// (TRYAGAIN, ASK), not stopped halfway on a key that has moved.
func (s *Redis) declared(keys []string, o Owner, tabs ...string) []string {
	if !s.cluster {
		return keys
	}
	p := s.prefixOf(o)
	keys = append(keys, p+"seq")
	if o.Scope == General {
		return keys
	}
	u := o.UserID
	keys = append(keys, p+"m:"+u, p+"o:user:"+u, p+"tabs:"+u, p+"tn:"+u)
	for _, t := range tabs {
		if t != "" {
			keys = append(keys, p+"o:tab:"+u+":"+t)
		}
	}
	return keys
}

// originTab is the tab of origin's that a script in o's slot numbers and
// keeps (origin_of in lua/prelude.lua), if any.
func originTab(origin Origin, o Owner) string {
	if origin.API || o.Scope == General || origin.UserID != o.UserID {
		return ""
	}
	return origin.TabID
}

// runOnce runs a writing script. With -redis-wait N it is acknowledged only
// once N replicas have what it wrote (redis_wait.go).
func (s *Redis) runOnce(ctx context.Context, sc *luaScript, keys []string, args ...any) *redis.Cmd {
	if s.wait == 0 {
		cmd := sc.writing(ctx, false, keys, args)
		s.ap.Process(ctx, cmd)
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") { // a new primary, or a restart: nothing ran
			cmd = sc.writing(ctx, true, keys, args)
			s.ap.Process(ctx, cmd)
		}
		cmd.SetErr(redisFault(cmd.Err()))
		return cmd.Cmd
	}
	// WAIT names no key: on a cluster it goes to the primary that runs the
	// script.
	primary, _ := s.rdb.(*redis.Client)
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		var err error
		if primary, err = c.MasterForKey(ctx, keys[0]); err != nil {
			cmd := redis.NewCmd(ctx)
			cmd.SetErr(redisFault(err))
			return cmd
		}
	}
	node := primary.Options().Addr
	cmd, wait := s.replicatedRun(primary, node, sc, keys, args)
	if cmd.Err() != nil {
		// The script's own answer (a refusal), or Redis did not answer.
		cmd.SetErr(redisFault(cmd.Err()))
	} else if err := s.waitErr(wait, node); err != nil {
		cmd.SetErr(err)
	}
	return cmd
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

func script(name string) *luaScript {
	prelude, err := luaFiles.ReadFile("lua/prelude.lua")
	if err != nil {
		panic(err)
	}
	body, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(err)
	}
	src := string(prelude) + string(body)
	return &luaScript{redis.NewScript(src), src}
}

// luaScript is one of the scripts, with its source for a node that does not
// have it yet.
type luaScript struct {
	*redis.Script
	src string
}

// once is a writing script's command, which go-redis must never send again
// by itself: it sends a whole pipeline again when the first command of it
// is refused as "try again" (TRYAGAIN, while a slot moves) or its
// connection breaks, and the other scripts of it, which ran, would run
// twice. run sends again only a script that was refused without running.
type once struct{ *redis.Cmd }

// NoRetry tells go-redis not to send the command, or a pipeline holding it,
// again.
func (once) NoRetry() bool { return true }

// writing is sc's command to run once, by its hash or (bySource) by its
// source, as redis.Script's EvalSha and Eval make it.
func (sc *luaScript) writing(ctx context.Context, bySource bool, keys []string, args []any) once {
	cmdArgs := make([]any, 3, 3+len(keys)+len(args))
	cmdArgs[0], cmdArgs[1], cmdArgs[2] = "evalsha", sc.Hash(), len(keys)
	if bySource {
		cmdArgs[0], cmdArgs[1] = "eval", sc.src
	}
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmd := redis.NewCmd(ctx, append(cmdArgs, args...)...)
	if len(keys) > 0 {
		cmd.SetFirstKeyPos(3)
	}
	return once{cmd}
}

// common returns the six ARGV every writing script starts with; prefix is
// that of the keys it touches (prefixOf).
func (s *Redis) common(prefix string) []any {
	return []any{prefix, s.now().UnixMilli(), s.expiry.UserTTL.Milliseconds(), s.expiry.OneShot.Milliseconds(),
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

// originArgs are the ARGV that name an origin to a script that touches the
// keys of owner's slot. A script numbers a new tab itself, with the user's
// keys; on a cluster, in another slot than the user's, it cannot: the tab
// is numbered first and the script is handed "#" and its number.
func (s *Redis) originArgs(ctx context.Context, o Origin, owner Owner) ([]any, error) {
	api, tab := "0", o.TabID
	if o.API {
		api = "1"
	}
	if s.cluster && !o.API && tab != "" && s.prefixOf(owner) != s.prefixOf(UserOwner(o.UserID)) {
		n := o.Tab
		if n == 0 {
			var err error
			if n, err = s.TabNumber(ctx, o.UserID, o.TabID); err != nil {
				return nil, err
			}
		}
		tab = "#" + strconv.Itoa(n)
	}
	return []any{o.UserID, tab, api, o.ClientID}, nil
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

// Touch refreshes the TTLs of a user (and tab) at most once per
// touchInterval, or at once when the cookie first comes back (as Store).
func (s *Redis) Touch(ctx context.Context, userID, tabID string, returning bool) error {
	now := s.now()
	due, writes := s.touched.needed(userID, tabID, now, returning)
	if !due {
		return nil
	}
	ret := "0"
	if returning {
		ret = "1"
	}
	user := UserOwner(userID)
	found, err := s.run(ctx, touchScript, s.declared([]string{s.ownerKey(user)}, user, tabID), append(s.common(s.prefixOf(user)), userID, tabID, ret)...).Int()
	if err != nil {
		return fmt.Errorf("touch %s: %w", userID, err)
	}
	s.touched.record(userID, tabID, now, returning, found == 1, writes)
	return nil
}

// TouchDue reports whether Touch would write now (as Store).
func (s *Redis) TouchDue(userID, tabID string, returning bool) bool {
	due, _ := s.touched.needed(userID, tabID, s.now(), returning)
	return due
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

// dialRedis connects to url: a Redis Cluster when the URL names several
// nodes (addr=) or its one node says it is part of a cluster, else one
// Redis. A Redis that is gone is answered within half a second, not after
// go-redis's retries and backoff; the URL may set each of these. A client
// that waits for replicas (wait) reads for longer than WAIT waits.
func dialRedis(ctx context.Context, url string, wait bool) (rdb redisClient, cluster bool, err error) {
	read := time.Second
	if wait {
		read = redisWaitTimeout + time.Second
	}
	o, err := redis.ParseURL(url)
	if err != nil && !strings.Contains(url, "addr=") {
		return nil, false, fmt.Errorf("redis url: %w", err)
	}
	if err == nil {
		o.DialTimeout = cmp.Or(o.DialTimeout, 200*time.Millisecond)
		o.DialerRetries = cmp.Or(o.DialerRetries, 1) // one dial per attempt
		o.ReadTimeout = cmp.Or(o.ReadTimeout, read)
		o.WriteTimeout = cmp.Or(o.WriteTimeout, time.Second)
		o.PoolTimeout = cmp.Or(o.PoolTimeout, 500*time.Millisecond)
		if o.MaxRetries == 0 {
			o.MaxRetries = 1 // a pooled connection that died with a restart
		}
		o.MaxRetryBackoff = cmp.Or(o.MaxRetryBackoff, 20*time.Millisecond)
		if !strings.Contains(url, "addr=") {
			one := redis.NewClient(o)
			info, err := one.Info(ctx, "cluster").Result()
			if err != nil || !strings.Contains(info, "cluster_enabled:1") {
				return one, false, nil // a Redis that does not answer is told by the first command
			}
			one.Close()
		}
	}
	co, err := redis.ParseClusterURL(url)
	if err != nil {
		return nil, false, fmt.Errorf("redis cluster url: %w", err)
	}
	co.DialTimeout = cmp.Or(co.DialTimeout, 200*time.Millisecond)
	co.DialerRetries = cmp.Or(co.DialerRetries, 1)
	co.ReadTimeout = cmp.Or(co.ReadTimeout, read)
	co.WriteTimeout = cmp.Or(co.WriteTimeout, time.Second)
	co.PoolTimeout = cmp.Or(co.PoolTimeout, 500*time.Millisecond)
	if co.MaxRetries == 0 {
		co.MaxRetries = 1
	}
	co.MaxRetryBackoff = cmp.Or(co.MaxRetryBackoff, 20*time.Millisecond)
	return redis.NewClusterClient(co), true, nil
}
