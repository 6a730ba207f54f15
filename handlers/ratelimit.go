package handlers

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"
)

// writeLimiter is a token bucket per user for explicit writes (inputs, the
// inspector, the API; not page views). Each user may burst up to burst
// writes, refilled at rate per second.
type writeLimiter struct {
	rate, burst float64
	mu          sync.Mutex
	buckets     map[string]*bucket
	lastSweep   time.Time
	now         func() time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// newWriteLimiter returns nil (no limit) for rate <= 0.
func newWriteLimiter(rate float64) *writeLimiter {
	if rate <= 0 {
		return nil
	}
	return &writeLimiter{rate: rate, burst: math.Max(3*rate, 1), buckets: map[string]*bucket{}, now: time.Now}
}

// allow takes a token from user's bucket, if there is one.
func (l *writeLimiter) allow(user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.lastSweep) > time.Minute {
		// A full bucket is the same as no bucket: forget those.
		for u, b := range l.buckets {
			if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
				delete(l.buckets, u)
			}
		}
		l.lastSweep = now
	}
	b, ok := l.buckets[user]
	if !ok {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[user] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limitWrites is middleware that refuses a user's writes beyond the rate
// with 429; nothing is written.
func (s *Server) limitWrites(next http.Handler) http.Handler {
	if s.writes == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.writes.allow(identityFrom(r).UserID) {
			s.serveError(w, r, &Error{Status: http.StatusTooManyRequests, RetryAfter: 1,
				Message: fmt.Sprintf("too many writes: at most %g per second; slow down and try again", s.writes.rate)})
			return
		}
		next.ServeHTTP(w, r)
	})
}
