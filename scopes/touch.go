package scopes

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/storagescopes/app/store"
)

// A returning browser keeps its user past the one-shot grace, and its user
// and tab from expiring while they are in use (store.Touch). No request
// waits for that (a locked database would hold it up): each hands its
// touch to one goroutine, which does what it is given in turn.

// touch is one returning request's user and tab.
type touch struct{ user, tab string }

// touchQueue bounds the touches waiting; beyond it a touch is dropped (the
// store touches at most once an hour anyway, and the browser's next request
// hands it again).
const touchQueue = 1024

// touchReturning hands the touch of a returning request to the toucher,
// unless the store has nothing to write for it (most requests: it touches
// each user and tab at most hourly), or the storage has a fault now.
func (s *App) touchReturning(id *Identity) {
	if !s.store.TouchDue(id.UserID, id.TabID, true) || s.hub.HealthNow() != nil {
		return
	}
	select {
	case s.touches <- touch{id.UserID, id.TabID}:
	default:
	}
}

// toucher does the touches it is handed, each once even when handed many
// times meanwhile, and at Close those still waiting. (touches is never
// closed: a request may still hand one while the app closes.)
func (s *App) toucher() {
	defer close(s.touched)
	for {
		select {
		case t := <-s.touches:
			s.touch(t)
		case <-s.closing:
			s.touch()
			return
		}
	}
}

// touch does first and every touch waiting now, once each.
func (s *App) touch(first ...touch) {
	pending := map[touch]bool{}
	for _, t := range first {
		pending[t] = true
	}
	for more := true; more; {
		select {
		case t := <-s.touches:
			pending[t] = true
		default:
			more = false
		}
	}
	// Together, so that the store's writer commits them as one batch; and
	// bounded, so that a locked database does not hold up Close.
	ctx, cancel := context.WithTimeout(context.Background(), touchWait)
	defer cancel()
	var wg sync.WaitGroup
	for t := range pending {
		wg.Go(func() {
			if err := s.store.Touch(ctx, t.user, t.tab, true); err != nil && store.FaultOf(err) == nil &&
				!errors.Is(err, store.ErrClosed) && !errors.Is(err, context.DeadlineExceeded) {
				s.log.Error("touch", "error", err, "user", t.user[:8])
			}
		})
	}
	wg.Wait()
}

// touchWait bounds one round of touches.
const touchWait = 2 * time.Second
