package store

import (
	"sync"
	"time"
)

// Clients is the client scope: one MemDict per page load, in the server's
// memory, keyed by (user, client id) like tabs, so a client id alone
// reaches nothing of another browser. A page's dictionary is dropped a
// grace period after its last live connection closes (unless the page
// reconnects), and on restart. A user has at most Limits.ClientsPerUser of
// them; a new one evicts the user's least recently used.
type Clients struct {
	mu      sync.Mutex
	byKey   map[clientKey]*clientData
	perUser map[string]int
	limits  Limits
	grace   time.Duration
	stop    chan struct{}
}

type clientKey struct{ user, client string }

type clientData struct {
	dict     MemDict
	conns    int       // open live connections of this page
	lastUsed time.Time // last access, or when the last connection closed
}

// NewClients starts the client scope, under limits; Close stops its sweeps.
func NewClients(limits Limits, grace time.Duration) *Clients {
	c := &Clients{byKey: map[clientKey]*clientData{}, perUser: map[string]int{}, limits: limits.WithDefaults(), grace: grace,
		stop: make(chan struct{})}
	go c.sweepEvery(time.Second)
	return c
}

// Close stops the sweeps.
func (c *Clients) Close() { close(c.stop) }

func (c *Clients) sweepEvery(d time.Duration) {
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

// sweep drops the dictionaries of pages without a connection for longer
// than the grace period.
func (c *Clients) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, d := range c.byKey {
		if d.conns <= 0 && now.Sub(d.lastUsed) > c.grace {
			c.remove(k)
		}
	}
}

// View is what w shows of the dictionary of user's page client.
func (c *Clients) View(user, client string, w Window) View {
	var snap Snapshot
	clientKeeper{c, clientKey{user, client}}.Read(func(m *MemDict) { snap = m.List(user) })
	return snap.View(w)
}

// Attach and Detach count a page's live connections: a page's dictionary
// outlives its last one by the grace period.
func (c *Clients) Attach(user, client string) {
	c.mu.Lock()
	c.get(clientKey{user, client}).conns++
	c.mu.Unlock()
}

// Detach is Attach's end.
func (c *Clients) Detach(user, client string) {
	c.mu.Lock()
	if d, ok := c.byKey[clientKey{user, client}]; ok {
		d.conns--
		d.lastUsed = time.Now()
	}
	c.mu.Unlock()
}

// get returns the page's dictionary, making it if needed. c.mu is held.
func (c *Clients) get(k clientKey) *clientData {
	now := time.Now()
	d, ok := c.byKey[k]
	if !ok {
		if c.perUser[k.user] >= c.limits.ClientsPerUser {
			c.evictOldest(k.user)
		}
		// Versions start at the creation time in microseconds, so they
		// stay above any a page saw before a server restart, and the page
		// takes the new, empty scope.
		d = &clientData{dict: MemDict{Seq: now.UnixMicro()}}
		c.byKey[k] = d
		c.perUser[k.user]++
	}
	d.lastUsed = now
	return d
}

// evictOldest drops the user's least recently used page dictionary,
// preferring pages that are not connected. c.mu is held.
func (c *Clients) evictOldest(user string) {
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

func (c *Clients) remove(k clientKey) {
	delete(c.byKey, k)
	if c.perUser[k.user]--; c.perUser[k.user] <= 0 {
		delete(c.perUser, k.user)
	}
}

// Dict is the dictionary of the page load by.ClientID of the browser
// by.UserID, changed as by.
func (c *Clients) Dict(by Origin) Dict {
	return NewMemDict(clientKeeper{c, clientKey{by.UserID, by.ClientID}}, by)
}

// clientKeeper keeps one page's dictionary under the Clients' lock.
type clientKeeper struct {
	c *Clients
	k clientKey
}

func (k clientKeeper) Read(f func(m *MemDict)) {
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	f(&k.c.get(k.k).dict)
}

func (k clientKeeper) Change(f func(m *MemDict, l Limits) (Change, error)) error {
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	_, err := f(&k.c.get(k.k).dict, k.c.limits)
	return err
}
