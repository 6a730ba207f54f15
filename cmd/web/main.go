// Command web serves the storage-scopes app.
//
//	go run ./cmd/web [-addr localhost:8080] [-db data/storage.db] [-secret S[,OLD…]] [-tab-ttl 30d] [-user-ttl 400d]
//
// With -redis URL the scopes live in Redis, shared by several instances.
// Every flag has an environment fallback, named in its help (go run
// ./cmd/web -h) and in the README.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/storagescopes/app/handlers"
	"github.com/storagescopes/app/internal/metrics"
	"github.com/storagescopes/app/scopes"
	"github.com/storagescopes/app/store"
)

func main() {
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	var restart *restartError
	if errors.As(err, &restart) {
		err = execSelf(restartArgs(os.Args[1:], restart.addr))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// tuneGC trades memory for CPU unless GOGC or GOMEMLIMIT say otherwise.
// GOGC is 200, and the heap goal never falls under 32 MiB: under load the
// live heap is small, and GOGC alone then collects many times a second,
// each time stopping the world. 200, not more, once the heap is large: more
// spreads many live connections over more spans. The memory limit makes
// the collector work harder again near 1 GiB. (docs/operations.md.)
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(200)
		keepHeapGoalAtLeast(32 << 20)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}

// keepHeapGoalAtLeast raises GOGC while the live heap is small, so that the
// heap goal stays at least floor bytes (the runtime's minimum heap is 4 MiB
// x GOGC/100), and brings it back to 200 as the heap grows. It looks after
// every collection, from a finalizer that the collection runs.
func keepHeapGoalAtLeast(floor uint64) {
	live := []runtimemetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var arm func()
	arm = func() {
		runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
			runtimemetrics.Read(live)
			n := max(live[0].Value.Uint64(), 1)
			debug.SetGCPercent(int(max(200, min(floor*100/n, floor*100/(4<<20)))))
			arm()
		})
	}
	arm()
}

// gcSentinel is garbage from birth: its finalizer runs after the next
// collection.
type gcSentinel struct{ _ *byte }

// config is what the flags say.
type config struct {
	addr      string
	dbPath    string
	secrets   []string
	tabTTL    time.Duration
	userTTL   time.Duration
	logLevel  slog.Level
	writeRate float64
	pprof     string
	metrics   string
	redisURL  string
	redisWait int
	oneShot   time.Duration
	limits    store.Limits
	demo      string // auto, on or off
	sync      store.Sync
	bodyBytes int
	// liveDeflate offers WebSocket compression (permessage-deflate) to the
	// pages' live connections.
	liveDeflate bool
	https       httpsConfig
}

// minSecretLen is the shortest secret accepted: the keys derived from it
// are only as strong as it is.
const minSecretLen = 32

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("web", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var c config
	var secret, tabTTL, userTTL, level string
	fs.StringVar(&c.addr, "addr", env("ADDR", "localhost:8080"), "address to listen on (ADDR)")
	fs.StringVar(&c.dbPath, "db", env("DB_PATH", "data/storage.db"), "SQLite database file, created with its folder (DB_PATH)")
	fs.StringVar(&secret, "secret", env("STORAGE_SECRET", ""), "cookie secret of at least 32 bytes; comma-separated to rotate: the first signs, all verify (STORAGE_SECRET); none: generated once and kept in the database")
	fs.StringVar(&tabTTL, "tab-ttl", env("TAB_TTL", "30d"), "tab storage is forgotten after this long unused, e.g. 30d, 12h (TAB_TTL)")
	fs.StringVar(&userTTL, "user-ttl", env("USER_TTL", "400d"), "user storage is forgotten after this long unused (USER_TTL)")
	fs.StringVar(&level, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (LOG_LEVEL)")
	fs.StringVar(&c.redisURL, "redis", env("REDIS_URL", ""), "keep the general, user and tab scopes in this Redis (redis://host:port/db), shared by every instance, instead of -db (REDIS_URL)")
	fs.StringVar(&c.metrics, "metrics", env("METRICS_ADDR", ""), "serve Prometheus metrics at /metrics on this separate address, e.g. 127.0.0.1:9090; off when empty (METRICS_ADDR)")
	fs.StringVar(&c.pprof, "pprof", env("PPROF_ADDR", ""), "serve net/http/pprof on this separate address, e.g. 127.0.0.1:6060; off when empty (PPROF_ADDR)")
	var oneShot string
	fs.StringVar(&oneShot, "one-shot-ttl", env("ONE_SHOT_TTL", "24h"), "a user whose cookie never came back is forgotten after this long (ONE_SHOT_TTL)")
	intFlag := func(p *int, name, envName string, def int, usage string) {
		*p = def
		if v := getenv(envName); v != "" {
			*p = -1 // checked below: the environment value must be a number
			fmt.Sscan(v, p)
		}
		fs.IntVar(p, name, *p, usage+" ("+envName+")")
	}
	d := store.DefaultLimits
	c.limits = d
	intFlag(&c.limits.KeysPerOwner, "max-keys", "MAX_KEYS", d.KeysPerOwner, "keys per scope owner")
	intFlag(&c.limits.ValueBytes, "max-value", "MAX_VALUE_BYTES", d.ValueBytes, "bytes of one JSON value")
	intFlag(&c.bodyBytes, "max-body", "MAX_BODY_BYTES", scopes.DefaultBodyBytes, "bytes of a request body")
	intFlag(&c.limits.TabsPerUser, "max-tabs", "MAX_TABS", d.TabsPerUser, "tabs with stored rows per user; a new one evicts the least recently used")
	intFlag(&c.redisWait, "redis-wait", "REDIS_WAIT", 0, "with -redis: a write is acknowledged once this many replicas have it too (Redis WAIT); 1 survives the loss of the primary")
	intFlag(&c.limits.ClientsPerUser, "max-clients", "MAX_CLIENTS", d.ClientsPerUser, "client (page-load) scopes per user; a new one evicts the least recently used")
	var sync string
	fs.StringVar(&sync, "sync", env("SQLITE_SYNC", "full"), "full: an acknowledged write survives a power cut; normal: only a crash of the process (SQLITE_SYNC)")
	fs.StringVar(&c.demo, "demo-controls", env("DEMO_CONTROLS", "auto"), "the Restart and Crash server buttons: auto (on when listening on loopback only), on or off (DEMO_CONTROLS)")
	var writeRate, liveDeflate string
	fs.StringVar(&liveDeflate, "live-deflate", env("LIVE_DEFLATE", "off"), "on: offer the pages' live connections WebSocket compression (permessage-deflate, each message compressed for each page); off (LIVE_DEFLATE)")
	fs.StringVar(&writeRate, "write-rate", env("WRITE_RATE", "20"), "explicit writes per second per user, in bursts of up to three seconds' worth; 0 turns the limit off (WRITE_RATE)")
	parseHTTPS := httpsFlags(fs, env)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := parseHTTPS(&c); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var err error
	if c.tabTTL, err = parseDuration(tabTTL); err != nil {
		return c, fmt.Errorf("-tab-ttl: %w", err)
	}
	if c.userTTL, err = parseDuration(userTTL); err != nil {
		return c, fmt.Errorf("-user-ttl: %w", err)
	}
	if c.oneShot, err = parseDuration(oneShot); err != nil {
		return c, fmt.Errorf("-one-shot-ttl: %w", err)
	}
	for name, v := range map[string]int{"-max-keys": c.limits.KeysPerOwner, "-max-value": c.limits.ValueBytes,
		"-max-body": c.bodyBytes, "-max-tabs": c.limits.TabsPerUser, "-max-clients": c.limits.ClientsPerUser} {
		if v < 1 {
			return c, fmt.Errorf("%s: must be a positive number", name)
		}
	}
	if c.redisWait < 0 {
		return c, fmt.Errorf("-redis-wait: must be a number of replicas, 0 or more")
	}
	if c.redisWait > 0 && c.redisURL == "" {
		return c, fmt.Errorf("-redis-wait: replicas are Redis's; set -redis too")
	}
	if c.writeRate, err = strconv.ParseFloat(writeRate, 64); err != nil || c.writeRate < 0 {
		return c, fmt.Errorf("-write-rate: %q is not a number of writes per second (0 turns the limit off)", writeRate)
	}
	switch liveDeflate {
	case "on":
		c.liveDeflate = true
	case "off":
	default:
		return c, fmt.Errorf("-live-deflate: %q is neither on nor off", liveDeflate)
	}
	if _, err := demoOn(c.demo, c.addr); err != nil {
		return c, err
	}
	if c.sync, err = store.ParseSync(sync); err != nil {
		return c, fmt.Errorf("-sync: %w", err)
	}
	if err := c.logLevel.UnmarshalText([]byte(level)); err != nil {
		return c, fmt.Errorf("-log-level: %w", err)
	}
	if secret != "" {
		for i, s := range strings.Split(secret, ",") {
			s = strings.TrimSpace(s)
			if len(s) < minSecretLen {
				// Never echo the secret itself.
				return c, fmt.Errorf("-secret: secret #%d is %d bytes; at least %d are needed", i+1, len(s), minSecretLen)
			}
			c.secrets = append(c.secrets, s)
		}
	}
	return c, nil
}

// timeouts protect against slow clients. A live connection is hijacked,
// which clears the connection's deadlines: these never cut it.
type timeouts struct {
	readHeader, read, write, idle time.Duration
}

var defaultTimeouts = timeouts{readHeader: 10 * time.Second, read: 30 * time.Second, write: 30 * time.Second, idle: 2 * time.Minute}

func newHTTPServer(h http.Handler, t timeouts, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       t.idle,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// openStore opens Redis when -redis is set, else the SQLite file.
func openStore(ctx context.Context, cfg config, log *slog.Logger, m *metrics.Metrics) (store.Store, error) {
	opts := store.Options{
		Metrics: m,
		Logger:  log,
		Limits:  cfg.limits,
		Expiry:  store.Expiry{TabTTL: cfg.tabTTL, UserTTL: cfg.userTTL, OneShot: cfg.oneShot},
		SQLite:  store.SQLiteOptions{Sync: cfg.sync},
		Redis:   store.RedisOptions{Wait: cfg.redisWait},
	}
	if cfg.redisURL != "" {
		return store.OpenRedis(ctx, cfg.redisURL, opts)
	}
	return store.Open(ctx, cfg.dbPath, opts)
}

// storeKind names the backend for people: "SQLite" or "Redis".
func (c config) storeKind() string {
	if c.redisURL != "" {
		return "Redis"
	}
	return "SQLite"
}

// storeName says where the data is, without a password a URL may hold.
func (c config) storeName() string {
	if c.redisURL == "" {
		return c.dbPath
	}
	if u, err := url.Parse(c.redisURL); err == nil {
		return "redis://" + u.Host + u.Path
	}
	return "redis"
}

// pprofMux is the profiler's handlers.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// serveAside serves h for the -name flag on its own listener at addr, never
// on the app's, logs where (path is its first page), and returns the
// server to close on shutdown.
func serveAside(name, addr, path string, h http.Handler, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-%s: listen on %s: %w", name, addr, err)
	}
	// No write timeout: a CPU profile or trace runs for as long as asked.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: defaultTimeouts.readHeader, IdleTimeout: defaultTimeouts.idle}
	log.Info(name, "at", "http://"+ln.Addr().String()+path)
	go srv.Serve(ln)
	return srv, nil
}

// parseDuration is time.ParseDuration plus a "d" (day) unit.
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a positive number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration (e.g. 30d, 12h, 90m)", s)
	}
	return d, nil
}

// run starts the app and serves until ctx ends, then shuts down: the
// listener closes, requests in flight finish (writes included), and the
// database closes.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: cfg.logLevel}))

	var m *metrics.Metrics // nil counts nothing
	if cfg.metrics != "" {
		m = metrics.New()
	}
	st, err := openStore(ctx, cfg, log, m)
	if err != nil {
		return err
	}
	defer st.Close()
	m.Boot(st.Boot().Number)

	if len(cfg.secrets) == 0 {
		secret, generated, err := st.Secret(ctx)
		if err != nil {
			return err
		}
		if generated {
			log.Warn("no -secret or STORAGE_SECRET given: generated one and kept it in the database; set one to share cookies between databases")
		}
		cfg.secrets = []string{secret}
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another server using that port?)", cfg.addr, err)
	}
	defer ln.Close()
	// The demo buttons: a restart stops as SIGTERM does, then starts the
	// program again; a crash starts it again at once, with no shutdown at all.
	restart := make(chan struct{}, 1)
	var demo *handlers.Demo
	on, _ := demoOn(cfg.demo, cfg.addr)
	if on && !canRestartInPlace {
		on = false
		log.Warn("the Restart and Crash server buttons are off: this system cannot start a program again in place")
	}
	if on {
		demo = &handlers.Demo{
			Restart: func() {
				select {
				case restart <- struct{}{}:
				default:
				}
			},
			Crash: func() {
				if err := execSelf(restartArgs(args, ln.Addr().String())); err != nil {
					log.Error("crash", "error", err)
				}
			},
		}
	}

	srv, err := handlers.New(handlers.Config{Demo: demo, Config: scopes.Config{
		Store:          st,
		StoreName:      cfg.storeKind(),
		Secrets:        cfg.secrets,
		Logger:         log,
		Limits:         cfg.limits,
		BodyBytes:      cfg.bodyBytes,
		TrustedProxies: cfg.https.proxies,
		HSTS:           cfg.https.hsts,
		TabTTL:         cfg.tabTTL,
		UserTTL:        cfg.userTTL,
		WriteRate:      cfg.writeRate,
		Metrics:        m,
		LiveDeflate:    cfg.liveDeflate,
	}})
	if err != nil {
		return err
	}

	httpServer := newHTTPServer(srv, defaultTimeouts, log)
	if cfg.pprof != "" {
		aside, err := serveAside("pprof", cfg.pprof, "/debug/pprof/", pprofMux(), log)
		if err != nil {
			return err
		}
		defer aside.Close()
	}
	if m != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		aside, err := serveAside("metrics", cfg.metrics, "/metrics", mux, log)
		if err != nil {
			return err
		}
		defer aside.Close()
	}
	scheme := "http://"
	if cfg.https.on() {
		tlsConfig, challenges, err := cfg.https.tlsConfig(cfg.dbPath, ln.Addr().String())
		if err != nil {
			return err
		}
		httpServer.TLSConfig, scheme = tlsConfig, "https://"
		if challenges != nil && cfg.https.httpAddr != "" {
			aside, err := serveChallenges(cfg.https.httpAddr, challenges, log)
			if err != nil {
				return err
			}
			defer aside.Close()
		}
	}
	where := ln.Addr().String()
	if len(cfg.https.domains) > 0 { // its certificates name it, not the address
		_, port, _ := net.SplitHostPort(where)
		where = net.JoinHostPort(cfg.https.domains[0], port)
	}
	log.Info("serving", "url", scheme+where, "store", cfg.storeName(), "boot", st.Boot().Number)

	serveErr := make(chan error, 1)
	go func() {
		if httpServer.TLSConfig != nil {
			serveErr <- httpServer.ServeTLS(ln, "", "") // HTTP/2 with it
			return
		}
		serveErr <- httpServer.Serve(ln)
	}()
	var restarting bool
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	case <-restart:
		restarting = true
	}
	log.Info("shutting down", "restart", restarting)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Requests in flight finish (their writes commit); then the live
	// connections, which the HTTP server does not track, close with "service
	// restart" so the pages reconnect; then the database closes.
	if err := httpServer.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	srv.Close()
	if err := st.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	log.Info("stopped")
	if restarting {
		return &restartError{addr: ln.Addr().String()}
	}
	return nil
}
