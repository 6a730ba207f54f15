package main

import "testing"

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
		{"-scenarios", "write-everything"},
	} {
		if _, err := parse(args); err == nil {
			t.Errorf("parse(%q) = nil error, want a refusal", args)
		}
	}
}
