package scopes

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// writeLimiter limits each user's explicit writes (inputs, the inspector,
// the API; not page views): a token bucket per user (x/time/rate) that holds
// three seconds' worth.
type writeLimiter struct {
	perSecond float64
	mu        sync.Mutex
	users     map[string]*rate.Limiter
	lastSweep time.Time
}

// newWriteLimiter returns nil (no limit) for perSecond <= 0.
func newWriteLimiter(perSecond float64) *writeLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &writeLimiter{perSecond: perSecond, users: map[string]*rate.Limiter{}}
}

// allow takes a token from user's bucket, if there is one.
func (l *writeLimiter) allow(user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.lastSweep) > time.Minute {
		// A full bucket is the same as no bucket: forget those.
		for u, b := range l.users {
			if b.TokensAt(now) >= float64(b.Burst()) {
				delete(l.users, u)
			}
		}
		l.lastSweep = now
	}
	b, ok := l.users[user]
	if !ok {
		b = rate.NewLimiter(rate.Limit(l.perSecond), int(math.Max(3*l.perSecond, 1)))
		l.users[user] = b
	}
	return b.AllowN(now, 1)
}

// LimitWrites is middleware that refuses a user's writes beyond the rate
// with 429; nothing is written.
func (s *App) LimitWrites(next http.Handler) http.Handler {
	if s.writes == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.writes.allow(Who(r).UserID) {
			s.serveError(w, r, &Error{Status: http.StatusTooManyRequests, RetryAfter: 1,
				Message: fmt.Sprintf("too many writes: at most %g per second; slow down and try again", s.writes.perSecond)})
			return
		}
		next.ServeHTTP(w, r)
	})
}
