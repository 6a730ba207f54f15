package live

import (
	"context"
	"time"

	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
)

// watchHealth asks the storage how it is every healthEvery and tells run
// when that changes.
func (h *Hub) watchHealth() {
	tick := time.NewTicker(healthEvery)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-h.quit:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), healthEvery/2)
		err := h.store.Health(ctx)
		cancel()
		fault := store.FaultOf(err)
		if err != nil && fault == nil {
			fault = store.ErrUnavailable
		}
		if fault == last {
			continue
		}
		if fault != nil {
			h.log.Error("storage fault: requests that need it are refused until it passes", "error", err)
		} else {
			h.log.Info("storage works again", "after", last)
		}
		last = fault
		h.post(event{health: true, fault: fault})
	}
}

// setHealth tells every page the storage's state. When the storage is back,
// every page reads what it shows again (what changed meanwhile was not
// pushed), and a page that joined without it joins again.
func (h *Hub) setHealth(b *batch, fault error) {
	h.mu.Lock()
	was := h.fault
	h.fault = fault
	var partial []*conn
	for c := range h.conns {
		if c.partial {
			partial = append(partial, c)
		}
	}
	h.mu.Unlock()
	h.deliver("", "", "", slotHealth, h.drawn(viewmodel.DrawHealth(fault)))
	if was == nil || fault != nil {
		return
	}
	for _, c := range partial {
		c.cancel(errRejoin)
	}
	clear(b.counts)
	h.resync(b)
}

// HealthNow is the storage's fault as last seen, for a page being drawn.
func (h *Hub) HealthNow() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fault
}
