package handlers

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The fuzz targets' seed corpora run with the normal tests; run one for
// real with e.g. go test -fuzz FuzzParseValue ./handlers.

func FuzzCheckKey(f *testing.F) {
	for _, seed := range []string{"", "a", "visits", "../etc", "a/b", ".", "..", "a\x00b", "\xff", "日本語", strings.Repeat("k", 129), "tab\t", " spaced "} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if checkKey(key, 128) != nil {
			return
		}
		// An accepted key is 1-128 printable characters and one URL path
		// segment.
		n := utf8.RuneCountInString(key)
		if !utf8.ValidString(key) || n < 1 || n > 128 || strings.Contains(key, "/") || key == "." || key == ".." {
			t.Fatalf("accepted %q", key)
		}
		for _, r := range key {
			if !unicode.IsPrint(r) {
				t.Fatalf("accepted %q with %U", key, r)
			}
		}
	})
}

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

func FuzzParseValue(f *testing.F) {
	for _, seed := range []string{``, `1`, `"text"`, `{"a":[1,2,{"b":null}]}`, `{"a":1,"a":2}`, `1e400`, "\"\xff\"", `[[[[`, `1 2`, ` true `, `{"\u0000":"x"}`, strings.Repeat("[", 40) + strings.Repeat("]", 40)} {
		f.Add([]byte(seed))
	}
	l := DefaultLimits
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseValue(b, l)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not a user-facing *Error", err)
			}
			return
		}
		// An accepted value is valid, compact JSON within the limits, and
		// parsing it again changes nothing.
		if !json.Valid(v) || len(v) > l.ValueBytes || !utf8.Valid(v) {
			t.Fatalf("accepted %q as %q", b, v)
		}
		again, err := parseValue(v, l)
		if err != nil || !bytes.Equal(again, v) {
			t.Fatalf("re-parsing %q gave %q, %v", v, again, err)
		}
	})
}
