package store

import (
	"container/list"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/storagescopes/app/internal/metrics"
)

// snapCache keeps the snapshots of recently read owners in memory, kept
// current by applying every change of theirs: SQLite's writer after each
// commit, the Redis store from the change stream every instance publishes
// to. A List of a cached owner costs no read.
//
// One rule keeps it right whatever order the changes of different owners
// arrive in (a Redis Cluster's shards publish each in its own order): a
// snapshot read from storage is cached only if no change to its owner
// arrived after the read began (readStart). The cache remembers the owners
// of the last recentMax changes for that check, and refuses a fill it can
// no longer check. A change already in a snapshot (one read later than the
// change was made) is not applied again: an owner's versions only grow.
type snapCache struct {
	mu       sync.Mutex
	maxBytes int
	maxAge   time.Duration // 0: for ever; else a snapshot is read again after it
	now      func() time.Time
	bytes    int
	m        map[Owner]*list.Element // of *cached
	lru      *list.List              // front: most recently used
	arrived  int64                   // changes applied so far, counted as they arrive
	recent   []recentChange          // ring of the last changes
	next     int                     // where the ring writes next
	// fillsFrom is the arrival a read must have begun at to be checked:
	// math.MaxInt64 while changes are being missed (down).
	fillsFrom int64
	metrics   *metrics.Metrics // counts hits and misses
}

type cached struct {
	owner   Owner
	entries []Entry // sorted by key
	bytes   int
	filled  time.Time
	version int64 // its owner's: every change up to it is in entries
}

type recentChange struct {
	owner   Owner
	arrival int64
}

const recentMax = 4096

// newSnapCache makes a cache that takes fills at once (up): its owner must
// call down while it may miss changes.
func newSnapCache(maxBytes int, maxAge time.Duration, now func() time.Time) *snapCache {
	return &snapCache{maxBytes: maxBytes, maxAge: maxAge, now: now, m: map[Owner]*list.Element{}, lru: list.New(),
		recent: make([]recentChange, 0, recentMax)}
}

// get returns a copy of o's snapshot, if cached.
func (c *snapCache) get(o Owner) (Snapshot, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lookup(o)
	if !ok {
		return Snapshot{}, false
	}
	return Snapshot{Entries: append([]Entry(nil), e.entries...), Version: e.version}, true
}

// lookup finds o's snapshot and counts the hit or miss. c.mu is held.
func (c *snapCache) lookup(o Owner) (*cached, bool) {
	el, ok := c.m[o]
	if !ok {
		c.metrics.CacheLookup(false)
		return nil, false
	}
	e := el.Value.(*cached)
	if c.maxAge > 0 && c.now().Sub(e.filled) > c.maxAge {
		c.remove(o) // storage may have let it expire without a change
		c.metrics.CacheLookup(false)
		return nil, false
	}
	c.metrics.CacheLookup(true)
	c.lru.MoveToFront(el)
	return e, true
}

// view returns what w shows of o's snapshot, if cached, copying only that.
func (c *snapCache) view(o Owner, w Window) (View, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lookup(o)
	if !ok {
		return View{}, false
	}
	return Snapshot{Entries: e.entries, Version: e.version}.View(w), true
}

// readStart is what a read takes before it asks storage, to hand fill.
func (c *snapCache) readStart() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.arrived
}

// down forgets every snapshot and refuses every fill until up: changes
// are being missed (the stream is lost).
func (c *snapCache) down() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.lru.Len() > 0 {
		c.remove(c.lru.Back().Value.(*cached).owner)
	}
	c.recent, c.next = c.recent[:0], 0
	c.arrived++ // a read begun before is told from one begun after
	c.fillsFrom = math.MaxInt64
}

// up says every change from now on will be applied: reads begun from now
// can be cached.
func (c *snapCache) up() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.arrived++
	c.fillsFrom = c.arrived
}

// fill caches snap, read from storage by a read begun at since (readStart),
// unless a change to o arrived after that (or that cannot be told any more).
func (c *snapCache) fill(o Owner, snap Snapshot, since int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[o]; ok || since < c.fillsFrom {
		return
	}
	for _, r := range c.recent {
		if r.owner == o && r.arrival > since {
			return
		}
	}
	e := &cached{owner: o, entries: append([]Entry(nil), snap.Entries...), filled: c.now(), version: snap.Version}
	for _, x := range e.entries {
		e.bytes += entrySize(x)
	}
	c.m[o] = c.lru.PushFront(e)
	c.bytes += e.bytes
	for c.bytes > c.maxBytes && c.lru.Len() > 1 {
		c.remove(c.lru.Back().Value.(*cached).owner)
	}
}

func entrySize(e Entry) int { return len(e.Key) + len(e.Value) + 64 }

func (c *snapCache) remove(o Owner) {
	if el, ok := c.m[o]; ok {
		c.bytes -= el.Value.(*cached).bytes
		c.lru.Remove(el)
		delete(c.m, o)
	}
}

// arrive records that a change to o arrived. c.mu is held.
func (c *snapCache) arrive(o Owner) {
	c.arrived++
	if len(c.recent) < recentMax {
		c.recent = append(c.recent, recentChange{o, c.arrived})
		return
	}
	// An older change falls out: a read begun before it cannot be checked.
	c.fillsFrom = max(c.fillsFrom, c.recent[c.next].arrival)
	c.recent[c.next] = recentChange{o, c.arrived}
	c.next = (c.next + 1) % recentMax
}

// apply brings the cached owners up to date: the writer calls it after each
// commit with the commit's changes, and with the owners it changed without
// a Change (a copied, evicted or expired tab; expired users).
func (c *snapCache) apply(changes []Change, stale []Owner) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range stale {
		c.remove(o)
		c.arrive(o)
	}
	for _, ch := range changes {
		c.arrive(ch.Owner)
		el, ok := c.m[ch.Owner]
		if !ok {
			continue
		}
		e := el.Value.(*cached)
		if ch.Version <= e.version {
			// Already in the snapshot: a change read from the stream
			// after a snapshot that was read later than it was made.
			continue
		}
		e.version = ch.Version
		i, found := search(e.entries, ch.Key)
		switch ch.Op {
		case OpSet:
			ne := ch.entry()
			if found {
				c.bytes += entrySize(ne) - entrySize(e.entries[i])
				e.bytes += entrySize(ne) - entrySize(e.entries[i])
				e.entries[i] = ne
			} else {
				e.entries = append(e.entries, Entry{})
				copy(e.entries[i+1:], e.entries[i:])
				e.entries[i] = ne
				c.bytes += entrySize(ne)
				e.bytes += entrySize(ne)
			}
		case OpDelete:
			if found {
				c.bytes -= entrySize(e.entries[i])
				e.bytes -= entrySize(e.entries[i])
				e.entries = append(e.entries[:i], e.entries[i+1:]...)
			}
		case OpClear:
			c.bytes -= e.bytes
			e.bytes, e.entries = 0, nil
		}
	}
}

// search finds key in entries sorted by key.
func search(entries []Entry, key string) (int, bool) {
	return slices.BinarySearchFunc(entries, key, func(e Entry, k string) int { return strings.Compare(e.Key, k) })
}

// sortEntries sorts by key, in byte order (SQLite's BINARY collation).
func sortEntries(entries []Entry) {
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
}
