package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/storagescopes/app/internal/proctest"
)

// One command brings up Redis, three instances and nginx: requests through
// the printed URL reach all three (each start has its own boot number), and
// stopping it (Ctrl-C) stops every one of them. The same with a Redis
// Cluster in place of the one Redis.
func TestCluster(t *testing.T) {
	t.Run("one redis", func(t *testing.T) { testCluster(t) })
	t.Run("redis cluster", func(t *testing.T) { testCluster(t, "-redis-cluster", "-redis-wait", "1") })
}

func testCluster(t *testing.T, extra ...string) {
	for _, bin := range []string{"nginx", "redis-server"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("NGINX_REQUIRED") == "1" || os.Getenv("REDIS_REQUIRED") == "1" {
				t.Fatalf("%s not found (NGINX_REQUIRED/REDIS_REQUIRED=1)", bin)
			}
			t.Skipf("%s not found: apt-get install -y %s", bin, bin)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &proctest.Log{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"-addr", addr, "-data", t.TempDir()}, extra...), out) }()
	for deadline := time.Now().Add(3 * time.Minute); !strings.Contains(out.String(), "cluster: open http://"+addr); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("run ended before the cluster was up: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cluster after 3 minutes:\n%s", out)
		}
	}

	boots := map[string]bool{}
	footer := regexp.MustCompile(`data-testid="boot-number"[^>]*>(\d+)<`)
	for range 9 {
		res, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := footer.FindSubmatch(body)
		if res.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("GET / through nginx: %d, no boot number", res.StatusCode)
		}
		boots[string(m[1])] = true
	}
	if len(boots) != 3 {
		t.Errorf("requests through nginx reached %d instances (boot numbers %v), want 3", len(boots), boots)
	}
	instances := regexp.MustCompile(`web\d+ at http://(\S+),`).FindAllStringSubmatch(out.String(), -1)
	redis := regexp.MustCompile(`(?:redis-server|six nodes) at redis://([0-9.:]+)`).FindStringSubmatch(out.String())
	if len(instances) != 3 || redis == nil {
		t.Fatalf("the output names %d instances and redis %v:\n%s", len(instances), redis, out)
	}

	cancel() // Ctrl-C
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after Ctrl-C: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30 s after Ctrl-C")
	}
	addrs := []string{addr, redis[1]}
	for _, m := range instances {
		addrs = append(addrs, m[1])
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Ctrl-C", a)
		}
	}
}
