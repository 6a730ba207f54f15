package static_test

import (
	"testing"

	"github.com/storagescopes/app/static"
)

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                        false,
		"gzip":                    true,
		"GZIP":                    true,
		"gzip, deflate, br, zstd": true,
		"br;q=1.0, gzip;q=0.8":    true,
		"gzip;q=0":                false,
		"gzip; q=0.000":           false,
		"identity":                false,
		"*":                       true,
		"*;q=0":                   false,
		"gzip;q=0, *":             false,
		"deflate, *;q=0.1":        true,
		"x-gzip":                  true,
		"br, zstd":                false,
	} {
		if got := static.AcceptsGzip(header); got != want {
			t.Errorf("AcceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}
