package handlers

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/storagescopes/app/store"
)

// clients is the client scope: one dictionary per page load, in memory,
// keyed by (user, client id) like tabs, so a client id alone reaches
// nothing of another browser. A dictionary is dropped a grace period after
// its page's live connection closes (unless the page reconnects), and on
// restart. Each user has at most max of them; a new one evicts the user's
// least recently used.
type clients struct {
	mu      sync.Mutex
	byKey   map[clientKey]*clientData
	perUser map[string]int
	limits  store.Limits // ClientsPerUser dictionaries per user, each by the scope rules
	grace   time.Duration
	now     func() time.Time
	stop    chan struct{}
}

type clientKey struct{ user, client string }

type clientData struct {
	kv       memKV
	conns    int       // open live connections of this page
	lastUsed time.Time // last access, or when the last connection closed
}

// newClients starts the client scope; close stops its sweeps.
func newClients(limits store.Limits, grace time.Duration) *clients {
	c := &clients{byKey: map[clientKey]*clientData{}, perUser: map[string]int{}, limits: limits, grace: grace,
		now: time.Now, stop: make(chan struct{})}
	go c.sweepEvery(time.Second)
	return c
}

func (c *clients) close() { close(c.stop) }

func (c *clients) sweepEvery(d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-t.C:
			c.sweep(now)
		}
	}
}

// get returns the page's dictionary, making it if needed. c.mu is held.
func (c *clients) get(k clientKey) *clientData {
	now := c.now()
	d, ok := c.byKey[k]
	if !ok {
		if c.perUser[k.user] >= c.limits.ClientsPerUser {
			c.evictOldest(k.user)
		}
		// Versions start at the creation time in microseconds, so they
		// stay above any a page saw before a server restart, and the page
		// takes the new, empty scope.
		d = &clientData{kv: memKV{Seq: now.UnixMicro()}}
		c.byKey[k] = d
		c.perUser[k.user]++
	}
	d.lastUsed = now
	return d
}

// evictOldest drops the user's least recently used page dictionary,
// preferring pages that are not connected. c.mu is held.
func (c *clients) evictOldest(user string) {
	older := func(d, than *clientData) bool {
		if (d.conns == 0) != (than.conns == 0) {
			return d.conns == 0
		}
		return d.lastUsed.Before(than.lastUsed)
	}
	var oldest clientKey
	var od *clientData
	for k, d := range c.byKey {
		if k.user == user && (od == nil || older(d, od)) {
			oldest, od = k, d
		}
	}
	if od != nil {
		c.remove(oldest)
	}
}

func (c *clients) remove(k clientKey) {
	delete(c.byKey, k)
	if c.perUser[k.user]--; c.perUser[k.user] <= 0 {
		delete(c.perUser, k.user)
	}
}

// attach and detach count a page's live connections.
func (c *clients) attach(user, client string) {
	c.mu.Lock()
	c.get(clientKey{user, client}).conns++
	c.mu.Unlock()
}

func (c *clients) detach(user, client string) {
	c.mu.Lock()
	if d, ok := c.byKey[clientKey{user, client}]; ok {
		d.conns--
		d.lastUsed = c.now()
	}
	c.mu.Unlock()
}

// sweep drops the dictionaries of pages without a connection for longer
// than the grace period.
func (c *clients) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, d := range c.byKey {
		if d.conns <= 0 && now.Sub(d.lastUsed) > c.grace {
			c.remove(k)
		}
	}
}

// dict is one page's dictionary; by says who changes it (the page's tab,
// numbered when first needed).
func (c *clients) dict(user, client string, by func(context.Context) (memOrigin, error)) dict {
	return clientDict{c: c, k: clientKey{user, client}, by: by}
}

// clientDict is the dict of one page load.
type clientDict struct {
	c  *clients
	k  clientKey
	by func(context.Context) (memOrigin, error)
}

// with runs f on the page's dictionary under the lock.
func (d clientDict) with(f func(m *memKV) error) error {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	return f(&d.c.get(d.k).kv)
}

func (d clientDict) List(context.Context) (snap store.Snapshot, err error) {
	err = d.with(func(m *memKV) error { snap = m.list(d.k.user); return nil })
	return snap, err
}

func (d clientDict) View(ctx context.Context, w store.Window) (store.View, error) {
	snap, err := d.List(ctx)
	return snap.View(w), err
}

func (d clientDict) Get(_ context.Context, key string) (e store.Entry, err error) {
	err = d.with(func(m *memKV) error { e, err = m.get(d.k.user, key); return err })
	return e, err
}

func (d clientDict) Set(ctx context.Context, key string, v json.RawMessage, ifVersion int64) (e store.Entry, err error) {
	by, err := d.by(ctx) // outside the lock: it may ask the store
	if err != nil {
		return e, err
	}
	err = d.with(func(m *memKV) error { e, err = m.set(d.k.user, key, v, ifVersion, by, d.c.limits); return err })
	return e, err
}

func (d clientDict) Increment(ctx context.Context, key string) (e store.Entry, err error) {
	by, err := d.by(ctx)
	if err != nil {
		return e, err
	}
	err = d.with(func(m *memKV) error { e, err = m.increment(d.k.user, key, by, d.c.limits); return err })
	return e, err
}

func (d clientDict) Delete(_ context.Context, key string, ifVersion int64) (version int64, err error) {
	err = d.with(func(m *memKV) error { version, err = m.delete(d.k.user, key, ifVersion); return err })
	return version, err
}

func (d clientDict) Clear(context.Context) (n int, version int64, err error) {
	err = d.with(func(m *memKV) error { n, version = m.clear(); return nil })
	return n, version, err
}
