package store

import (
	"sync"
	"time"
)

// tabNumbers are the tab numbers a store has read, so that naming a
// request's tab (every request of a page names it) costs no query. One
// rule keeps it right, in both backends: a tab's number never changes
// while the tab exists, so an entry goes when this instance sees the tab
// or its user deleted (evicted over the cap, expired), and in any case
// after tabNumberAge (another instance's expiry is not announced). A read
// that began before a deletion is not kept: put takes the generation get
// saw.
type tabNumbers struct {
	now func() time.Time

	mu   sync.Mutex
	gen  uint64 // counts deletions
	user map[string]map[string]tabNumber
}

type tabNumber struct {
	n  int
	at time.Time
}

const (
	tabNumberAge   = time.Minute
	tabNumbersUser = 100_000 // users remembered at most; past it they are read again as needed
)

func newTabNumbers(now func() time.Time) *tabNumbers {
	return &tabNumbers{now: now, user: map[string]map[string]tabNumber{}}
}

// get returns the tab's number if it is known, and the generation to hand
// put after reading it.
func (t *tabNumbers) get(userID, tabID string) (n int, ok bool, gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.user[userID][tabID]
	if !ok || t.now().Sub(e.at) > tabNumberAge {
		return 0, false, t.gen
	}
	return e.n, true, t.gen
}

// put keeps a number read since get answered gen, unless a tab was
// deleted meanwhile (the read may predate it).
func (t *tabNumbers) put(userID, tabID string, n int, gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen != t.gen {
		return
	}
	tabs := t.user[userID]
	if tabs == nil {
		if len(t.user) >= tabNumbersUser {
			clear(t.user)
		}
		tabs = map[string]tabNumber{}
		t.user[userID] = tabs
	}
	tabs[tabID] = tabNumber{n, t.now()}
}

// forget drops what is known of the tabs of owners (a deleted tab, or
// every tab of a deleted user: give its UserOwner).
func (t *tabNumbers) forget(owners ...Owner) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gen++
	for _, o := range owners {
		switch o.Scope {
		case Tab:
			delete(t.user[o.UserID], o.TabID)
		case User:
			delete(t.user, o.UserID)
		}
	}
}
