package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The tool never sends load anywhere but this machine.
func TestOnlyLoopbackTargets(t *testing.T) {
	for url, ok := range map[string]bool{
		"http://127.0.0.1:8080":    true,
		"http://localhost:8080/":   true,
		"http://[::1]:8080":        true,
		"http://127.9.9.9":         true,
		"http://10.0.0.5:8080":     false,
		"http://192.168.1.2":       false,
		"https://example.com":      false,
		"http://localhost.evil.io": false,
	} {
		if err := checkLoopback(url); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want allowed=%v", url, err, ok)
		}
	}
}

// Several runs are summed up as a median and a range, an even count's
// median halfway between its middle two.
func TestSpread(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want string
	}{
		{nil, "-"},
		{[]float64{0.5}, "0.50 (0.50–0.50)"},
		{[]float64{0.48, 0.40, 0.54}, "0.48 (0.40–0.54)"},
		{[]float64{0.4, 0.5, 0.3, 0.6}, "0.45 (0.30–0.60)"},
	} {
		if got := spread(c.xs, ""); got != c.want {
			t.Errorf("spread(%v) = %q, want %q", c.xs, got, c.want)
		}
	}
}

// Flags that cannot go together are refused before anything starts.
func TestParseRefuses(t *testing.T) {
	for _, args := range [][]string{
		{"-runs", "0"},
		{"-url", "http://127.0.0.1:8080", "-app", "/tmp/web"},
		{"-app", "/tmp/a,/tmp/b", "-rows", "10"},
		{"-app", "/tmp/before/web,/tmp/after/web"}, // their figures would be summed up as one build's
		{"-scenarios", "write-everything"},
	} {
		if _, err := parse(args); err == nil {
			t.Errorf("parse(%q) = nil error, want a refusal", args)
		}
	}
}

// The bare handler answers any request as the app answered the probe: the
// same status, headers and body, less the Date and cookie a server sets
// itself; an answer it cannot read is refused and the last one stays.
func TestTheBaselineAnswersAsTheApp(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		w.Header().Set("Set-Cookie", "scopes=abc")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "Saved <b>note</b>")
	}))
	defer app.Close()
	res, err := http.Post(app.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := answerLike(res)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	base := httptest.NewServer(newBaseline())
	defer base.Close()
	ctx := t.Context()
	if err := put(ctx, http.DefaultClient, base.URL+"/answer", a.json()); err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, http.DefaultClient, base.URL+"/answer", `{"status": "two hundred"}`); err == nil {
		t.Error("PUT /answer with a status that is not a number: no error, want 400")
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", base.URL+"/scopes/user/fields/user_note", strings.NewReader("value=x"))
	req.Header.Set("HX-Request", "true")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || string(body) != "Saved <b>note</b>" || res.ContentLength != int64(len(body)) {
		t.Errorf("got %d %q (length %d), want 201 %q with its length", res.StatusCode, body, res.ContentLength, "Saved <b>note</b>")
	}
	if got := res.Header.Get("Content-Security-Policy"); got != "default-src 'self'" {
		t.Errorf("Content-Security-Policy %q, want the app's", got)
	}
	if got := res.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("Set-Cookie %q, want none", got)
	}
}
