package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// allScenarios are what the tool can measure.
var allScenarios = []string{"write-htmx", "write-api", "write-general", "page", "page-gzip", "tab-panel", "fanout", "full-scope"}

func isScenario(s string) bool { return slices.Contains(allScenarios, s) }

// scenario is one kind of request, sent by conns virtual clients, each with
// its own cookie, tab id and page-load id, over keep-alive connections.
type scenario struct {
	name    string
	url     string
	clients []*vclient
}

type vclient struct {
	c           *http.Client
	cookie      string // "name=value" of the cookie the server last set
	tab, client string
	n           int
}

// send sends req with the client's cookie and keeps the one the answer
// sets, as a browser does for one site (the app sets one cookie). A
// net/http/cookiejar, made for any number of hosts, paths and expiries,
// costs the client CPU on every answer that the baseline, setting no
// cookie, never pays.
func (v *vclient) send(req *http.Request) (*http.Response, error) {
	if v.cookie != "" {
		req.Header.Set("Cookie", v.cookie)
	}
	res, err := v.c.Do(req)
	if err != nil {
		return nil, err
	}
	if set := res.Header.Get("Set-Cookie"); set != "" {
		v.cookie, _, _ = strings.Cut(set, ";")
	}
	return res, nil
}

func uuid() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// newTransport is a client's connections to one server, conns of them.
// No client asks for compression unless its scenario says so (page-gzip):
// the others measure the app's own work, as they did before it compressed.
func newTransport(conns int) *http.Transport {
	return &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute,
		DisableCompression: true}
}

func newScenario(ctx context.Context, name, base string, conns int) (*scenario, error) {
	tr := newTransport(conns)
	s := &scenario{name: name, url: base}
	for range conns {
		v := &vclient{c: &http.Client{Transport: tr, Timeout: 30 * time.Second}, tab: uuid(), client: uuid()}
		s.clients = append(s.clients, v)
	}
	// Each client gets its cookie from a first page load, as a browser does.
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for _, v := range s.clients {
		wg.Go(func() {
			if err := v.visit(ctx, base+"/"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return s, <-errs
}

// against is the same scenario sent to the bare handler at url: the same
// requests, byte for byte (each client's cookie, tab and page-load ids
// copied), over connections of its own.
func (s *scenario) against(url string) *scenario {
	tr := newTransport(len(s.clients))
	b := &scenario{name: s.name, url: url}
	for _, v := range s.clients {
		b.clients = append(b.clients, &vclient{c: &http.Client{Transport: tr, Timeout: v.c.Timeout}, cookie: v.cookie, tab: v.tab, client: v.client, n: v.n})
	}
	return b
}

// visit loads a page, as a browser's first visit does.
func (v *vclient) visit(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	res, err := v.send(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	return nil
}

// request builds the i-th request of client v.
func (s *scenario) request(ctx context.Context, v *vclient) (*http.Request, error) {
	v.n++
	var (
		method, path, body, ctype string
		htmx                      bool
	)
	switch s.name {
	case "write-htmx":
		method, path, ctype, htmx = "POST", "/scopes/user/fields/user_note", "application/x-www-form-urlencoded", true
		body = url.Values{"value": {fmt.Sprintf("note %d", v.n)}}.Encode()
	case "write-api":
		method, path, ctype = "PUT", "/api/storage/user/note", "application/json"
		body = fmt.Sprintf(`"note %d"`, v.n)
	case "write-general":
		method, path, ctype = "PUT", "/api/storage/general/hot", "application/json"
		body = fmt.Sprintf(`%d`, v.n)
	case "page", "page-gzip":
		method, path = "GET", "/"
	case "tab-panel":
		method, path, htmx = "POST", "/scopes/tab/visit", true
	default:
		return nil, fmt.Errorf("no requests for %q", s.name)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if s.name == "page-gzip" {
		// As a browser asks; the answer is read as it comes (a browser
		// would inflate it on a core of its own).
		req.Header.Set("Accept-Encoding", "gzip")
	}
	if htmx {
		req.Header.Set("HX-Request", "true")
		req.Header.Set("X-Tab-ID", v.tab)
		req.Header.Set("X-Client-ID", v.client)
	}
	return req, nil
}

// do sends one request and reads the whole answer.
func (s *scenario) do(ctx context.Context, v *vclient) (int, error) {
	req, err := s.request(ctx, v)
	if err != nil {
		return 0, err
	}
	res, err := v.send(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	if err != nil {
		return 0, err
	}
	if res.StatusCode >= 400 {
		return int(n), fmt.Errorf("status %d", res.StatusCode)
	}
	return int(n), nil
}

// probe sends one request and returns its answer, for the bare handler to
// send.
func (s *scenario) probe(ctx context.Context) (answer, error) {
	v := s.clients[0]
	req, err := s.request(ctx, v)
	if err != nil {
		return answer{}, err
	}
	res, err := v.send(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	if res.StatusCode >= 400 {
		return answer{}, fmt.Errorf("probe: status %d", res.StatusCode)
	}
	return answerLike(res)
}

// result is one measurement.
type result struct {
	latencies []time.Duration // sorted
	errors    int
	elapsed   time.Duration
	median    float64 // requests/s of the median slice, when pooled
	// sent counts every request, warm-up included, and serverCPU and
	// clientCPU are the CPU time spent over all of them (serverCPU is zero
	// for a server the tool did not start).
	sent                 int
	serverCPU, clientCPU time.Duration
	redisCPU             time.Duration // the redis-server's, if it uses one
}

// perRequest is d over every request sent.
func (r result) perRequest(d time.Duration) time.Duration {
	if r.sent == 0 {
		return 0
	}
	return d / time.Duration(r.sent)
}

// cpuPerRequest is the server's and the client's CPU time per request.
func (r result) cpuPerRequest() (server, client time.Duration) {
	if r.sent == 0 {
		return 0, 0
	}
	return r.serverCPU / time.Duration(r.sent), r.clientCPU / time.Duration(r.sent)
}

func (r result) rps() float64 {
	if r.median > 0 {
		return r.median
	}
	return float64(len(r.latencies)) / r.elapsed.Seconds()
}

// pool merges the slices of one measurement: the median slice's
// throughput, and every latency.
func pool(rs []result) result {
	var all result
	var rates []float64
	for _, r := range rs {
		rates = append(rates, r.rps())
		all.latencies = append(all.latencies, r.latencies...)
		all.errors += r.errors
		all.elapsed += r.elapsed
		all.sent += r.sent
		all.serverCPU += r.serverCPU
		all.clientCPU += r.clientCPU
		all.redisCPU += r.redisCPU
	}
	slices.Sort(rates)
	slices.Sort(all.latencies)
	all.median = rates[len(rates)/2]
	return all
}

func (r result) p(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(len(r.latencies)-1, int(float64(len(r.latencies))*q/100))]
}

func (r result) max() time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[len(r.latencies)-1]
}

// drive runs every client in a loop against p: warmup first, then d
// measured.
func drive(ctx context.Context, s *scenario, p *process, warmup, d time.Duration) result {
	server0, client0, redis0 := p.cpu(), selfCPU(), p.redisCPU()
	start := time.Now()
	from, until := start.Add(warmup), start.Add(warmup+d)
	var mu sync.Mutex
	var all result
	var wg sync.WaitGroup
	for _, v := range s.clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			errs, sent := 0, 0
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(until) {
					break
				}
				_, err := s.do(ctx, v)
				sent++
				t1 := time.Now()
				if t0.Before(from) || t1.After(until) {
					continue
				}
				if err != nil {
					errs++
				} else {
					lat = append(lat, t1.Sub(t0))
				}
			}
			mu.Lock()
			all.latencies = append(all.latencies, lat...)
			all.errors += errs
			all.sent += sent
			mu.Unlock()
		})
	}
	wg.Wait()
	all.elapsed = d
	all.serverCPU, all.clientCPU, all.redisCPU = p.cpu()-server0, selfCPU()-client0, p.redisCPU()-redis0
	slices.Sort(all.latencies)
	return all
}
