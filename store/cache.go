package store

import (
	"container/list"
	"slices"
	"strings"
	"sync"
)

// snapCache keeps the snapshots of recently read owners in memory, and the
// writer keeps them current: after each commit it applies that commit's
// changes to the cached owners. A List of a cached owner costs no read.
//
// A snapshot read from the database is only cached if no commit changed its
// owner after it was read: the cache remembers the owners of the last
// recentMax changes for that check, and refuses a fill it cannot check.
type snapCache struct {
	mu       sync.Mutex
	maxBytes int
	bytes    int
	m        map[Owner]*list.Element // of *cached
	lru      *list.List              // front: most recently used
	seq      int64                   // the last commit applied
	recent   []recentChange          // ring of the last changes
	next     int                     // where the ring writes next
	forgot   int64                   // fills read at an older version are refused
}

type cached struct {
	owner   Owner
	entries []Entry // sorted by key
	bytes   int
}

type recentChange struct {
	owner Owner
	seq   int64
}

const recentMax = 4096

func newSnapCache(maxBytes int) *snapCache {
	return &snapCache{maxBytes: maxBytes, m: map[Owner]*list.Element{}, lru: list.New(), recent: make([]recentChange, 0, recentMax)}
}

// get returns a copy of o's snapshot, if cached.
func (c *snapCache) get(o Owner) (Snapshot, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[o]
	if !ok {
		return Snapshot{}, false
	}
	c.lru.MoveToFront(el)
	e := el.Value.(*cached)
	return Snapshot{Entries: append([]Entry(nil), e.entries...), Version: c.seq}, true
}

// fill caches snap, read from the database, unless o changed after it was
// read (or that cannot be told any more).
func (c *snapCache) fill(o Owner, snap Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[o]; ok || snap.Version < c.forgot {
		return
	}
	for _, r := range c.recent {
		if r.owner == o && r.seq > snap.Version {
			return
		}
	}
	e := &cached{owner: o, entries: append([]Entry(nil), snap.Entries...)}
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

// note records that o changed at seq. c.mu is held.
func (c *snapCache) note(o Owner, seq int64) {
	if len(c.recent) < recentMax {
		c.recent = append(c.recent, recentChange{o, seq})
		return
	}
	c.forgot = max(c.forgot, c.recent[c.next].seq) // an older change falls out
	c.recent[c.next] = recentChange{o, seq}
	c.next = (c.next + 1) % recentMax
}

// apply brings the cached owners up to commit seq: the writer calls it
// after each commit with the commit's changes, and with the owners it
// changed without a Change (a copied, evicted or expired tab; expired users).
func (c *snapCache) apply(seq int64, changes []Change, stale []Owner) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq = seq
	for _, o := range stale {
		c.remove(o)
		c.note(o, seq)
	}
	for _, ch := range changes {
		c.note(ch.Owner, ch.Version)
		el, ok := c.m[ch.Owner]
		if !ok {
			continue
		}
		e := el.Value.(*cached)
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
