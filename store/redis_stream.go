package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

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
			s.cache.down() // what is published now is missed
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
			s.cache.down() // what was published while it was lost is missed
			s.mine.forget()
			s.cache.up()
			changes = []Change{{Op: OpResync}} // back after a loss
		case *redis.Message:
			p, err := decodeMessage(m.Payload)
			if err != nil {
				s.cache.down() // it may have changed a cached owner
				s.cache.up()
				s.log.Error("redis: a change that does not decode", "error", err)
				continue
			}
			if p.Op == OpPresence && p.ClientID == s.instance {
				continue // our own share
			}
			c := p.change()
			switch {
			case c.Op == opEvict:
				s.tabNumbers.forget(c.Owner) // an evicted tab comes back as a new one
				s.cache.apply(nil, []Owner{c.Owner})
				s.heard(c)
				continue
			case c.Op == OpSet || c.Op == OpDelete || c.Op == OpClear:
				if c.Owner.Scope != Browser { // a stored change
					s.cache.apply([]Change{c}, nil)
					s.heard(c)
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

// streamWait is how long a read waits for the change stream to bring the
// cache up to this instance's last write before it reads Redis instead.
const streamWait = 20 * time.Millisecond

// cached returns o's cached snapshot once the stream has brought this
// instance's writes to it.
func (s *Redis) cached(ctx context.Context, o Owner) (Snapshot, bool) {
	if !s.waitForMyWrites(ctx, o) {
		return Snapshot{}, false
	}
	return s.cache.get(o)
}

// waitForMyWrites waits, at most streamWait, until the change stream has
// brought the cache this instance's last acknowledged write of o's stream;
// if it has not, the read is counted a miss and goes to Redis.
func (s *Redis) waitForMyWrites(ctx context.Context, o Owner) bool {
	if s.mine.wait(ctx, s.streamOf(o), streamWait) {
		return true
	}
	s.metrics.CacheLookup(false)
	return false
}

// streamOf names the stream o's changes come in, in order: the one stream
// of a Redis server; on a cluster, its slot's (its hash tag).
func (s *Redis) streamOf(o Owner) string {
	if !s.cluster {
		return ""
	}
	return s.prefixOf(o)
}

// pendingWrites are, per stream, the version of the last write this
// instance was answered for that the stream has not brought back yet, and
// the newest version the stream has brought (a write's message may arrive
// before its answer).
type pendingWrites struct {
	mu    sync.Mutex
	of    map[string]int64
	heard map[string]int64 // at most pendingStreams; forgotten, a read waits for the next change or reads Redis
	moved chan struct{}    // closed when one is heard
}

// pendingStreams bounds the streams whose newest version is remembered (a
// cluster has one per browser).
const pendingStreams = 10_000

// answered records that a write of o's stream was answered with version v.
func (s *Redis) answered(o Owner, v int64) {
	p, stream := &s.mine, s.streamOf(o)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.made()
	if p.heard[stream] >= v {
		return // its message came first
	}
	p.of[stream] = max(p.of[stream], v)
}

// heard takes in a change the stream brought of a stored owner: a write
// of this instance's up to it is no longer waited for.
func (s *Redis) heard(c Change) {
	p, stream := &s.mine, s.streamOf(c.Owner)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.made()
	if _, ok := p.heard[stream]; !ok && len(p.heard) >= pendingStreams {
		clear(p.heard)
	}
	p.heard[stream] = max(p.heard[stream], c.Version)
	if v, ok := p.of[stream]; ok && c.Version >= v {
		delete(p.of, stream)
		close(p.moved)
		p.moved = make(chan struct{})
	}
}

// made makes p's maps on first use (the zero value is ready). p.mu is held.
func (p *pendingWrites) made() {
	if p.of == nil {
		p.of, p.heard, p.moved = map[string]int64{}, map[string]int64{}, make(chan struct{})
	}
}

// forget drops every pending write: the stream was lost, and the cache
// holds nothing read before it came back.
func (p *pendingWrites) forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.of)
}

// wait waits, at most d, until no write of stream is pending.
func (p *pendingWrites) wait(ctx context.Context, stream string, d time.Duration) bool {
	var timeout <-chan time.Time
	for {
		p.mu.Lock()
		_, pending := p.of[stream]
		moved := p.moved
		p.mu.Unlock()
		if !pending {
			return true
		}
		if timeout == nil {
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-moved:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// SharePresence keeps this instance's pages for Options.Redis.PresenceTTL (an
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
	pp := s.presencePrefix()
	res, err := presenceScript.Run(ctx, s.rdb, []string{pp + "instances", pp + "presence:" + s.instance}, // see declared
		append(s.common(pp), s.instance, s.presenceTTL.Milliseconds(), string(share), changed)...).StringSlice()
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

// atomicString is a string read and swapped by several goroutines.
type atomicString struct{ v atomic.Pointer[string] }

func (a *atomicString) Swap(s string) string {
	if old := a.v.Swap(&s); old != nil {
		return *old
	}
	return ""
}

func (a *atomicString) Store(s string) { a.v.Store(&s) }
