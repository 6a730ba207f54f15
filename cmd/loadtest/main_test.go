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
