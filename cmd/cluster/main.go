// Command cluster runs the app as many instances would run in production,
// on loopback: a redis-server with AOF on (or, with -redis-cluster, a Redis
// Cluster of three primaries and three replicas), three instances sharing
// it, and nginx in front with the app's configuration
// (internal/nginx/scopes.conf). It prints the URL to open and stops
// everything on Ctrl-C. Run it with `go tool task cluster`.
//
// Each instance's log lines come out prefixed with its name; each serves
// its metrics (-metrics) on an address of its own, printed at start.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/storagescopes/app/internal/nginx"
	"github.com/storagescopes/app/internal/proctest"
	"github.com/storagescopes/app/store/redistest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// run starts the cluster, reports where it is on out, and stops it when ctx
// ends (Ctrl-C).
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "where nginx listens: the URL to open (loopback)")
	n := fs.Int("n", 3, "how many instances")
	data := fs.String("data", "data/cluster", "the folder for Redis's files (kept across runs) and nginx's")
	redisCluster := fs.Bool("redis-cluster", false, "a Redis Cluster (three primaries, three replicas, AOF; new each run) in place of the one Redis")
	redisWait := fs.Int("redis-wait", 0, "the instances' -redis-wait: replicas that must have a write before it is acknowledged (1 with -redis-cluster survives a primary's loss)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 {
		return fmt.Errorf("-n %d: at least one instance", *n)
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if !filepath.IsAbs(*data) {
		*data = filepath.Join(root, *data)
	}
	redisDir, nginxDir, binDir := filepath.Join(*data, "redis"), filepath.Join(*data, "nginx"), filepath.Join(*data, "bin")
	for _, d := range []string{redisDir, nginxDir, binDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		return errors.New("nginx not found: install it with `apt-get install -y nginx`")
	}

	fmt.Fprintln(out, "cluster: building ./cmd/web")
	app, err := proctest.Build(ctx, "./cmd/web", binDir)
	if err != nil {
		return err
	}
	var redisURL string
	if *redisCluster {
		dir, err := os.MkdirTemp(redisDir, "cluster-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		rc, err := redistest.NewCluster(dir)
		if err != nil {
			return err
		}
		defer rc.Kill()
		redisURL = rc.URL
		fmt.Fprintf(out, "cluster: a Redis Cluster of six nodes at %s (AOF in %s, removed at the end)\n", redisURL, dir)
	} else {
		redis, err := redistest.NewServer(redisDir)
		if err != nil {
			return err
		}
		defer redis.Stop() // SIGTERM: it writes its AOF and exits
		redisURL = redis.URL
		fmt.Fprintf(out, "cluster: redis-server at %s (AOF in %s)\n", redis.URL, redisDir)
	}

	var instances []*proctest.Process
	defer func() {
		for _, p := range instances {
			p.Stop() // SIGTERM: requests in flight finish, pages reconnect elsewhere
		}
	}()
	var upstreams []string
	echo := &lines{w: out}
	for i := range *n {
		name := fmt.Sprintf("web%d", i+1)
		prog := app
		prog.Echo = echo.prefixed(name)
		p, err := proctest.Start(ctx, prog, "-addr", "127.0.0.1:0", "-redis", redisURL, "-redis-wait", fmt.Sprint(*redisWait), "-metrics", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		instances = append(instances, p)
		upstreams = append(upstreams, p.Addr)
		fmt.Fprintf(out, "cluster: %s at %s, metrics at %s\n", name, p.URL, metricsAt(p.Log()))
	}
	lb, err := nginx.Start(ctx, nginxDir, *addr, upstreams, nil)
	if err != nil {
		return err
	}
	defer lb.Stop()
	store := "one Redis"
	if *redisCluster {
		store = "a Redis Cluster"
	}
	fmt.Fprintf(out, "\ncluster: open %s  (%d instances behind nginx, %s; Ctrl-C stops all)\n\n", lb.URL, *n, store)

	exited := make(chan string, len(instances))
	for i, p := range instances {
		go func() {
			<-p.Done()
			exited <- fmt.Sprintf("web%d", i+1)
		}()
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\ncluster: stopping")
		return nil
	case name := <-exited:
		// A Ctrl-C in a terminal reaches the instances too, and one may
		// exit before the signal is seen here.
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "\ncluster: stopping")
			return nil
		case <-time.After(time.Second):
			return fmt.Errorf("%s exited; stopping the rest", name)
		}
	}
}

// moduleRoot is the folder of the module around the current one.
func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(b))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the module: run from its folder")
	}
	return filepath.Dir(mod), nil
}

var metricsLine = regexp.MustCompile(`metrics at=(http://\S+)`)

func metricsAt(log string) string {
	if m := metricsLine.FindStringSubmatch(log); m != nil {
		return m[1]
	}
	return "?"
}

// lines writes whole lines from several programs to w, each prefixed with
// its program's name.
type lines struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lines) prefixed(name string) io.Writer {
	return &prefixWriter{l: l, prefix: fmt.Sprintf("%-5s| ", name)}
}

type prefixWriter struct {
	l       *lines
	prefix  string
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Fprintf(p.l.w, "%s%s\n", p.prefix, p.partial[:i])
		p.partial = p.partial[i+1:]
	}
}
