package live

import (
	"context"
	"slices"
	"time"

	"github.com/a-h/templ"
	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
)

// localPresence is who has a page open on this instance. h.mu is held.
func (h *Hub) localPresence() store.Presence {
	p := store.Presence{}
	for user, conns := range h.byUser {
		var tabs []int
		for c := range conns {
			if c.tab > 0 {
				tabs = append(tabs, c.tab)
			}
		}
		slices.Sort(tabs)
		p[user] = slices.Compact(tabs)
	}
	return p
}

// sharePresence shares this instance's pages soon after they change (and
// every presenceHeartbeat regardless), and hands run what every instance
// has open.
func (h *Hub) sharePresence() {
	tick := time.NewTicker(presenceEvery)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-h.quit:
			return
		case <-tick.C:
		}
		h.mu.Lock()
		due := h.presenceDirty || time.Since(last) >= presenceHeartbeat
		h.presenceDirty = false
		mine := h.localPresence()
		h.mu.Unlock()
		if !due {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		all, err := h.store.SharePresence(ctx, mine)
		cancel()
		if err != nil {
			h.log.Warn("live: share presence", "error", err)
			h.mu.Lock()
			h.presenceDirty = true // try again
			h.mu.Unlock()
			continue
		}
		last = time.Now()
		h.post(event{presence: all})
	}
}

// PresenceNow is who has a page open now, as last shared.
func (h *Hub) PresenceNow() store.Presence {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.shared
}

// updatePresence takes in who has a page open now and pushes the presence
// lines that changed: general to every page, user and browser to the
// pages of each browser whose tabs changed.
func (h *Hub) updatePresence(all store.Presence) {
	h.mu.Lock()
	old := h.shared
	h.shared = all
	h.mu.Unlock()
	count := func(p store.Presence) (tabs, browsers int) {
		for _, t := range p {
			tabs += len(t)
		}
		return tabs, len(p)
	}
	ot, ob := count(old)
	nt, nb := count(all)
	if ot != nt || ob != nb {
		h.deliver("", "", "", slotPresenceGeneral, h.drawn(viewmodel.DrawPresence(store.General, all, viewmodel.Viewer{})))
	}
	for user := range all {
		if !slices.Equal(old[user], all[user]) {
			h.pushUserPresence(user, all)
		}
	}
	for user := range old {
		if _, ok := all[user]; !ok {
			h.pushUserPresence(user, all)
		}
	}
}

// pushUserPresence sends the user's and browser's presence lines to that
// browser's pages, each marked with its own tab.
func (h *Hub) pushUserPresence(user string, all store.Presence) {
	for _, c := range h.recipientList(user, "", "") {
		v := viewmodel.Viewer{UserID: c.userID, Tab: c.tab}
		msg := h.drawn(templ.Join(viewmodel.DrawPresence(store.User, all, v), viewmodel.DrawPresence(store.Browser, all, v)))
		h.send(c, slotPresenceUser, msg)
	}
}
