package store

import (
	"container/list"
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/storagescopes/app/internal/metrics"
)

// snapCache keeps the snapshots of recently read owners in memory, kept
// current by applying every change in version order: SQLite's writer after
// each commit, the Redis store from the change stream every instance
// publishes to. A List of a cached owner costs no read.
//
// A snapshot read from storage is only cached if it is no newer than the
// changes applied so far and no change to its owner came after it was read:
// the cache remembers the owners of the last recentMax changes for that
// check, and refuses a fill it cannot check.
type snapCache struct {
	mu        sync.Mutex
	maxBytes  int
	maxAge    time.Duration // 0: for ever; else a snapshot is read again after it
	now       func() time.Time
	bytes     int
	m         map[Owner]*list.Element // of *cached
	lru       *list.List              // front: most recently used
	seq       int64                   // the last change applied
	moved     chan struct{}           // closed when seq moves on
	recent    []recentChange          // ring of the last changes
	next      int                     // where the ring writes next
	fillsFrom int64                   // fills read at an older version are refused
	metrics   *metrics.Metrics        // counts hits and misses
}

type cached struct {
	owner   Owner
	entries []Entry // sorted by key
	bytes   int
	filled  time.Time
	version int64 // the snapshot's: it holds every change up to it
}

type recentChange struct {
	owner Owner
	seq   int64
}

const recentMax = 4096

func newSnapCache(maxBytes int, maxAge time.Duration, now func() time.Time) *snapCache {
	return &snapCache{maxBytes: maxBytes, maxAge: maxAge, now: now, m: map[Owner]*list.Element{}, lru: list.New(),
		moved: make(chan struct{}), recent: make([]recentChange, 0, recentMax)}
}

// get returns a copy of o's snapshot, if cached.
func (c *snapCache) get(o Owner) (Snapshot, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lookup(o)
	if !ok {
		return Snapshot{}, false
	}
	return Snapshot{Entries: append([]Entry(nil), e.entries...), Version: c.seq}, true
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
	return Snapshot{Entries: e.entries, Version: c.seq}.View(w), true
}

// waitFor waits, at most wait, until the changes up to version v are
// applied, and reports whether they are.
func (c *snapCache) waitFor(ctx context.Context, v int64, wait time.Duration) bool {
	var timeout <-chan time.Time
	for {
		c.mu.Lock()
		seq, moved := c.seq, c.moved
		c.mu.Unlock()
		if seq >= v {
			return true
		}
		if timeout == nil {
			t := time.NewTimer(wait)
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

// reset forgets every snapshot and refuses every fill until the next change
// is applied: changes may have been missed.
func (c *snapCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.lru.Len() > 0 {
		c.remove(c.lru.Back().Value.(*cached).owner)
	}
	c.recent, c.next = c.recent[:0], 0
	c.fillsFrom = math.MaxInt64
}

// fill caches snap, read from storage, unless o changed after it was read
// (or that cannot be told any more).
func (c *snapCache) fill(o Owner, snap Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[o]; ok || snap.Version < c.fillsFrom || snap.Version > c.seq {
		return
	}
	for _, r := range c.recent {
		if r.owner == o && r.seq > snap.Version {
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

// remember records that o changed at seq. c.mu is held.
func (c *snapCache) remember(o Owner, seq int64) {
	if len(c.recent) < recentMax {
		c.recent = append(c.recent, recentChange{o, seq})
		return
	}
	c.fillsFrom = max(c.fillsFrom, c.recent[c.next].seq) // an older change falls out
	c.recent[c.next] = recentChange{o, seq}
	c.next = (c.next + 1) % recentMax
}

// apply brings the cached owners up to commit seq: the writer calls it
// after each commit with the commit's changes, and with the owners it
// changed without a Change (a copied, evicted or expired tab; expired users).
func (c *snapCache) apply(seq int64, changes []Change, stale []Owner) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fillsFrom == math.MaxInt64 {
		c.fillsFrom = seq // after a reset, fills from here on can be checked
	}
	if seq > c.seq {
		c.seq = seq
		close(c.moved)
		c.moved = make(chan struct{})
	}
	for _, o := range stale {
		c.remove(o)
		c.remember(o, seq)
	}
	for _, ch := range changes {
		c.remember(ch.Owner, ch.Version)
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
