package scopes

import (
	"strings"
	"testing"
)

// The seed corpus runs with the normal tests; go test -fuzz FuzzCheckUUID
// ./handlers runs it for real.

func FuzzCheckUUID(f *testing.F) {
	for _, seed := range []string{"", "6f1c2a9e-3b7d-4c1e-9a55-0d2b8f7e4c31", "6F1C2A9E-3B7D-4C1E-9A55-0D2B8F7E4C31", "6f1c2a9e3b7d4c1e9a550d2b8f7e4c31", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", strings.Repeat("a", 10<<10)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		got, err := checkUUID("tab id", id)
		if err != nil {
			return
		}
		// An accepted id is the canonical lower-case form of the input.
		if len(got) != 36 || got != strings.ToLower(id) || strings.Trim(got, "0123456789abcdef-") != "" ||
			got[8] != '-' || got[13] != '-' || got[18] != '-' || got[23] != '-' {
			t.Fatalf("accepted %q as %q", id, got)
		}
	})
}
