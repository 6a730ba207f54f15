// Package metrics is what the app counts about itself, in Prometheus' terms:
// one Metrics value, made by cmd/web and handed to the store and the
// handlers, which observe into it; Handler serves it in the text format on
// an address of its own (-metrics). A nil *Metrics observes nothing, so
// tests and tools need not make one.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every series the app exports. Each is documented in
// docs/metrics.md under its full name.
type Metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec   // route, method, code
	duration     *prometheus.HistogramVec // route
	batchSize    prometheus.Histogram
	commit       prometheus.Histogram
	liveConns    prometheus.Gauge
	pushes       prometheus.Counter
	pushDelay    prometheus.Histogram
	liveBytes    prometheus.Counter
	cacheHits    prometheus.Counter
	cacheMisses  prometheus.Counter
	redisErrors  *prometheus.CounterVec
	redirected   prometheus.Counter
	resubscribed prometheus.Counter
	boot         prometheus.Gauge
}

// New makes the series and registers them, with the Go runtime's and the
// process's own (heap, RSS, CPU, open files).
func New() *Metrics {
	ms := []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopes_http_requests_total", Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "scopes_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route pattern (live connections are counted, not timed).",
			Buckets: ms,
		}, []string{"route"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "scopes_write_batch_size", Help: "Writes committed together in one transaction (SQLite's group commit; 1 per script on Redis).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9),
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "scopes_write_commit_seconds", Help: "Time a write batch took to commit (on Redis: a writing script's round trip).",
			Buckets: ms,
		}),
		liveConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopes_live_connections", Help: "Pages with a live connection (WebSocket) open on this instance.",
		}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scopes_pushes_total", Help: "Changes pushed to live pages (one per page per change).",
		}),
		liveBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scopes_live_bytes_total", Help: "Bytes written to the live connections' sockets (frames and all, after permessage-deflate if taken).",
		}),
		pushDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "scopes_push_delay_seconds", Help: "From a change's commit to its push being handed to the pages that see it.",
			Buckets: ms,
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scopes_cache_hits_total", Help: "Scope reads answered from this instance's snapshot cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scopes_cache_misses_total", Help: "Scope reads that went to storage.",
		}),
		redirected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scopes_redis_redirections_total", Help: "Scripts a Redis Cluster node refused because their slot moved or is moving (MOVED, ASK, TRYAGAIN: a failover or a resharding), sent again.",
		}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scopes_redis_errors_total", Help: "Redis commands that failed for want of Redis (refused, timed out, loading, cannot persist), by node (host:port).",
		}, []string{"node"}),
		resubscribed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scopes_redis_resubscriptions_total", Help: "Times the subscription to the change stream was lost and made again.",
		}),
		boot: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopes_boot_number", Help: "This start's boot number, as the page's footer shows it.",
		}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.batchSize, m.commit, m.liveConns, m.pushes, m.pushDelay, m.liveBytes,
		m.cacheHits, m.cacheMisses, m.redisErrors, m.redirected, m.resubscribed, m.boot,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves every series in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Request counts one answered request; route is its pattern ("" when no
// route matched: counted as "unmatched", so stray paths make no series).
func (m *Metrics) Request(route, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

// Upgraded counts a request answered by switching to a WebSocket, which is
// not timed: it lasts as long as its page.
func (m *Metrics) Upgraded(route string) {
	if m != nil {
		m.requests.WithLabelValues(route, http.MethodGet, "101").Inc()
	}
}

// Commit records a write batch of n writes that took d.
func (m *Metrics) Commit(n int, d time.Duration) {
	if m == nil {
		return
	}
	m.batchSize.Observe(float64(n))
	m.commit.Observe(d.Seconds())
}

// LiveConnections moves the count of open live connections by delta.
func (m *Metrics) LiveConnections(delta int) {
	if m == nil {
		return
	}
	m.liveConns.Add(float64(delta))
}

// Pushed records n pages sent a change committed at (unix ms).
func (m *Metrics) Pushed(n int, at int64) {
	if m == nil || n == 0 {
		return
	}
	m.pushes.Add(float64(n))
	if at > 0 {
		m.pushDelay.Observe(max(0, time.Since(time.UnixMilli(at)).Seconds()))
	}
}

// LiveBytes counts n bytes written to a live connection's socket.
func (m *Metrics) LiveBytes(n int) {
	if m != nil && n > 0 {
		m.liveBytes.Add(float64(n))
	}
}

// CacheLookup counts a scope read answered from the cache (hit) or not.
func (m *Metrics) CacheLookup(hit bool) {
	if m == nil {
		return
	}
	if hit {
		m.cacheHits.Inc()
	} else {
		m.cacheMisses.Inc()
	}
}

// RedisError counts a command that Redis did not answer, or a write too few
// replicas confirmed.
func (m *Metrics) RedisError(node string) {
	if m != nil {
		m.redisErrors.WithLabelValues(node).Inc()
	}
}

// Redirected counts a script a cluster node refused because its slot moved
// or is moving, sent again.
func (m *Metrics) Redirected() {
	if m != nil {
		m.redirected.Inc()
	}
}

// Resubscribed counts a change stream subscription made again.
func (m *Metrics) Resubscribed() {
	if m != nil {
		m.resubscribed.Inc()
	}
}

// Boot sets the boot number.
func (m *Metrics) Boot(n int64) {
	if m != nil {
		m.boot.Set(float64(n))
	}
}
