package main

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

func TestDemoOn(t *testing.T) {
	for _, c := range []struct {
		mode, addr string
		want       bool
	}{
		{"auto", "localhost:8080", true}, {"auto", "127.0.0.1:0", true}, {"auto", "[::1]:8080", true},
		{"auto", ":8080", false}, {"auto", "0.0.0.0:8080", false}, {"auto", "192.168.1.2:80", false},
		{"on", ":8080", true}, {"off", "localhost:8080", false},
	} {
		if got, err := demoOn(c.mode, c.addr); err != nil || got != c.want {
			t.Errorf("demoOn(%q, %q) = %v, %v; want %v", c.mode, c.addr, got, err, c.want)
		}
	}
	if _, err := demoOn("maybe", "localhost:8080"); err == nil {
		t.Error("demoOn accepted maybe")
	}
}

func TestRestartArgsKeepTheAddress(t *testing.T) {
	for _, c := range []struct{ args, want []string }{
		{[]string{"-db", "x.db"}, []string{"-db", "x.db", "-addr", "127.0.0.1:5"}},
		{[]string{"-addr", "127.0.0.1:0", "-db", "x.db"}, []string{"-db", "x.db", "-addr", "127.0.0.1:5"}},
		{[]string{"--addr=:0", "-addr", "x", "-v"}, []string{"-v", "-addr", "127.0.0.1:5"}},
	} {
		if got := restartArgs(c.args, "127.0.0.1:5"); !slices.Equal(got, c.want) {
			t.Errorf("restartArgs(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}

// The Crash button stops the program at once, with writes in flight, and
// the same program starts again in place: same process, same port, boot
// number up, every acknowledged write there. The Restart button does the
// same gracefully.
func TestDemoButtonsStartTheProgramAgainInPlace(t *testing.T) {
	db := filepath.Join(t.TempDir(), "storage.db")
	c := startChild(t, "-addr", "127.0.0.1:0", "-db", db, "-secret", testSecret, "-write-rate", "0")
	pid := c.Pid()
	var writers []*writer
	for i := range 4 {
		writers = append(writers, newWriter(i))
	}
	for round, button := range []string{"crash", "restart"} {
		boot := bootNumber(t, newJarClient(), c.URL)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, w := range writers {
			wg.Go(func() { w.run(c.URL, round, stop) })
		}
		waitForWrites(t, writers, 50*(round+1))
		status, body := do(t, newJarClient(), "POST", c.URL+"/demo/"+button, "", nil)
		if status != 202 {
			t.Fatalf("%s: %d %s", button, status, body)
		}
		close(stop)
		wg.Wait()
		waitNewBoot(t, c.URL, boot)
		if c.Pid() != pid || c.Exited() {
			t.Fatalf("%s: the process changed (%d, then %d)", button, pid, c.Pid())
		}
		for _, w := range writers {
			w.verify(t, c.URL)
		}
	}
	if n := strings.Count(c.Log(), "msg=serving url="+c.URL); n != 3 {
		t.Errorf("served %d times on %s, want 3:\n%s", n, c.URL, c.Log())
	}
}

// waitForWrites waits until the writers have had n writes acknowledged.
func waitForWrites(t *testing.T, writers []*writer, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		total := 0
		for _, w := range writers {
			total += w.count()
		}
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes acknowledged", total)
		}
	}
}

// waitNewBoot waits until url serves again, on a boot other than boot.
func waitNewBoot(t *testing.T, url, boot string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if res, err := http.Get(url + "/"); err == nil {
			doc, err := goquery.NewDocumentFromReader(res.Body)
			res.Body.Close()
			if err == nil && res.StatusCode == 200 {
				if got := doc.Find(`[data-testid="boot-number"]`).Text(); got != boot {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come back on a new boot (was %s)", url, boot)
		}
	}
}
