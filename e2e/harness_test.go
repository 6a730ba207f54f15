// Package e2e drives the real server, run as a separate process, with a
// real Chromium, the way people use the app: several tabs, several
// browsers, reloads, and restarts of the server.
//
// The tests skip when Chromium is missing, unless E2E_REQUIRED=1 (CI).
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	// The suite runs the server as a built binary, which go test's cache
	// cannot see; importing its packages makes a change to them re-run it.
	_ "github.com/storagescopes/app/handlers"
	"github.com/storagescopes/app/internal/proctest"
)

const secret = "e2e-secret-e2e-secret-e2e-secret-0123456789"

var (
	serverProg proctest.Program // built once in TestMain
	chromePath string
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				chromePath = p
				break
			}
		}
		dir, err := os.MkdirTemp("", "e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if serverProg, err = proctest.Build(context.Background(), "./cmd/web", dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

// needChromium skips the test without Chromium, or fails it in CI.
func needChromium(t *testing.T) {
	t.Helper()
	if chromePath != "" {
		return
	}
	msg := "Chromium not found: install it with `apt-get install -y chromium` to run the browser tests"
	if os.Getenv("E2E_REQUIRED") == "1" {
		t.Fatal(msg + " (E2E_REQUIRED=1)")
	}
	t.Skip(msg)
}

// server is the real program running as a child process, on its own
// database.
type server struct{ *proctest.Process }

// startServer runs the server on a fresh database and a free port; extra
// flags go after the defaults.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	db := filepath.Join(t.TempDir(), "storage.db")
	args := append([]string{"-addr", "127.0.0.1:0", "-db", db, "-secret", secret}, extra...)
	return &server{proctest.MustStart(t, serverProg, args...)}
}

// restart kills the server (no graceful anything) and starts it again on
// the same database and port.
func (s *server) restart(t *testing.T) {
	t.Helper()
	s.Kill()
	s.MustRestart(t)
}

// browser is one Chromium with its own profile.
type browser struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	tab []*tab
}

// newBrowser starts a headless Chromium with a fresh profile.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	needChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromePath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		if t.Failed() {
			b.saveEvidence()
		}
		cancel()
		cancelAlloc()
	})
	return b
}

// context is a separate browser context of the same Chromium: its own
// cookies and storage, like another browser.
func (b *browser) context() *browser {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("new browser context: %v", err)
	}
	other := &browser{t: b.t, ctx: ctx}
	b.t.Cleanup(func() {
		if b.t.Failed() {
			other.saveEvidence()
		}
		cancel()
	})
	return other
}

// tab is one open tab.
type tab struct {
	b      *browser
	ctx    context.Context
	cancel context.CancelFunc
	name   string
}

// open opens a new tab on url and waits until the page is fully up: the
// tab and client panels loaded and the live connection connected.
func (b *browser) open(url string) *tab {
	b.t.Helper()
	t := b.navigate(url)
	t.ready()
	return t
}

// navigate opens a new tab on url, without waiting for the app's page
// (it may be an error page).
func (b *browser) navigate(url string) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	// The first action on a tab binds the tab's life to its context: it
	// must not carry a deadline.
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("open a tab: %v", err)
	}
	t := b.adopt(ctx, cancel)
	t.do(chromedp.Navigate(url))
	return t
}

// attach takes over a tab the page opened (window.open) and waits until
// it is up.
func (b *browser) attach(id target.ID) *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithTargetID(id))
	if err := chromedp.Do(ctx); err != nil { // no deadline: see open
		b.t.Fatalf("attach to tab: %v", err)
	}
	t := b.adopt(ctx, cancel)
	t.ready()
	return t
}

func (b *browser) adopt(ctx context.Context, cancel context.CancelFunc) *tab {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &tab{b: b, ctx: ctx, cancel: cancel, name: fmt.Sprintf("tab%d", len(b.tab)+1)}
	b.tab = append(b.tab, t)
	return t
}

// close closes the tab.
func (t *tab) close() { t.cancel() }

const stepTimeout = 20 * time.Second

// do runs actions on the tab with a timeout.
func (t *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	t.b.t.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.b.t.Fatalf("%s: %v", t.name, err)
	}
}

// eval evaluates a JS expression in the tab.
func eval[T any](t *tab, js string) T {
	t.b.t.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.b.t.Fatalf("%s: eval %s: %v", t.name, js, err)
	}
	return v
}

// waitFor polls a JS condition until it is true.
func (t *tab) waitFor(what, js string) {
	t.b.t.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, stepTimeout)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js,
		chromedp.WithPollingTimeout(stepTimeout), chromedp.WithPollingInterval(25*time.Millisecond)))
	if err != nil {
		t.b.t.Fatalf("%s: waiting for %s: %v", t.name, what, err)
	}
}

// ready waits until the page's lazy panels are loaded and it is live.
func (t *tab) ready() {
	t.b.t.Helper()
	t.waitFor("the page to be up", `document.querySelector('#input-tab-tab_data') && document.querySelector('#input-client-client_note') && document.querySelector('#live')?.dataset.state === 'connected'`)
}

// reload reloads the tab and waits until it is up.
func (t *tab) reload() {
	t.b.t.Helper()
	t.do(chromedp.Reload())
	t.ready()
}

// field is a bound input by scope and key.
func field(scope, key string) string { return "#input-" + scope + "-" + key }

// value is an input's current value.
func (t *tab) value(sel string) string {
	t.b.t.Helper()
	return eval[string](t, fmt.Sprintf(`document.querySelector(%q).value`, sel))
}

// text is an element's text.
func (t *tab) text(sel string) string {
	t.b.t.Helper()
	return strings.TrimSpace(eval[string](t, fmt.Sprintf(`document.querySelector(%q).textContent`, sel)))
}

// typeText types into a bound field as a person would and waits until the
// status beside it says saved.
func (t *tab) typeText(scope, key, text string) {
	t.b.t.Helper()
	t.do(chromedp.SendKeys(chromedp.CSS(field(scope, key)), text))
	t.waitSaved(scope, key)
}

// clear empties a bound field as a person would (select all, delete).
func (t *tab) clear(scope, key string) {
	t.b.t.Helper()
	t.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(() => { const el = document.querySelector(%q); el.focus(); el.select(); document.execCommand('delete'); })()`, field(scope, key))))
}

// waitSaved waits for a field's saved state.
func (t *tab) waitSaved(scope, key string) {
	t.b.t.Helper()
	t.waitFor(scope+"/"+key+" saved", fmt.Sprintf(`document.querySelector('[data-testid="status-%s-%s"]').dataset.state === 'saved'`, scope, key))
}

// checkValues reports each input (by selector) that does not show its
// wanted value; when says at what point of the test.
func (t *tab) checkValues(when string, want map[string]string) {
	t.b.t.Helper()
	for sel, w := range want {
		if got := t.value(sel); got != w {
			t.b.t.Errorf("%s: %s = %q, want %q", when, sel, got, w)
		}
	}
}

// checkTexts reports each element (by data-testid) whose text is not the
// wanted one.
func (t *tab) checkTexts(when string, want map[string]string) {
	t.b.t.Helper()
	for id, w := range want {
		if got := t.text(`[data-testid="` + id + `"]`); got != w {
			t.b.t.Errorf("%s: %s = %s, want %s", when, id, got, w)
		}
	}
}

// waitValue waits until an input shows want.
func (t *tab) waitValue(sel, want string) {
	t.b.t.Helper()
	t.waitFor(fmt.Sprintf("%s to be %q", sel, want), fmt.Sprintf(`document.querySelector(%q)?.value === %q`, sel, want))
}

// waitText waits until an element's text is want.
func (t *tab) waitText(sel, want string) {
	t.b.t.Helper()
	t.waitFor(fmt.Sprintf("%s to read %q", sel, want), fmt.Sprintf(`document.querySelector(%q)?.textContent.trim() === %q`, sel, want))
}

// saveEvidence writes a screenshot and the HTML of every open tab to a
// folder that outlives the test, and prints the paths.
func (b *browser) saveEvidence() {
	dir, err := os.MkdirTemp("", "e2e-failure-")
	if err != nil {
		return
	}
	for _, t := range b.tab {
		ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err == nil {
			p := filepath.Join(dir, t.name+".png")
			os.WriteFile(p, png, 0o644)
			b.t.Logf("screenshot of %s: %s", t.name, p)
		} else {
			b.t.Logf("no screenshot of %s: %v", t.name, err)
		}
		html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		if err == nil {
			p := filepath.Join(dir, t.name+".html")
			os.WriteFile(p, []byte(html), 0o644)
			b.t.Logf("HTML of %s: %s", t.name, p)
		}
		cancel()
	}
}

// audit runs axe-core on the tab's page and reports every accessibility
// violation it finds; when says at what point of the test.
func (t *tab) audit(when string) {
	t.b.t.Helper()
	axe, err := os.ReadFile("testdata/axe-4.14.1.min.js")
	if err != nil {
		t.b.t.Fatal(err)
	}
	t.do(chromedp.Evaluate[chromedp.Void](string(axe)))
	ctx, cancel := context.WithTimeout(t.ctx, stepTimeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document).then(r => JSON.stringify(r.violations.map(v =>
		({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.b.t.Fatalf("%s: axe: %v", when, err)
	}
	var violations []struct {
		ID, Help string
		Nodes    []string
	}
	if err := json.Unmarshal([]byte(raw), &violations); err != nil {
		t.b.t.Fatalf("%s: %v: %s", when, err, raw)
	}
	for _, v := range violations {
		t.b.t.Errorf("%s: %s (%s): %s", when, v.ID, v.Help, strings.Join(v.Nodes, "; "))
	}
}

// watchErrors records every script error and console error of the tab
// from now on; the returned function reports them.
func (t *tab) watchErrors() func() []string {
	var mu sync.Mutex
	var errs []string
	err := chromedp.Listen(t.ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *cdpruntime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			errs = append(errs, fmt.Sprintf("%s (%s:%d)", text, d.URL, d.LineNumber+1))
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				errs = append(errs, strings.Join(args, " "))
			}
		}
	})
	if err != nil {
		t.b.t.Fatalf("%s: listen for errors: %v", t.name, err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(errs)
	}
}
