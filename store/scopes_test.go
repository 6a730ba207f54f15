package store_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/storagescopes/app/store"
)

// The fuzz targets' seed corpora run with the normal tests; run one for
// real with e.g. go test -fuzz FuzzParseValue ./store.

func FuzzCheckKey(f *testing.F) {
	for _, seed := range []string{"", "a", "visits", "../etc", "a/b", ".", "..", "a\x00b", "\xff", "日本語", strings.Repeat("k", 129), "tab\t", " spaced "} {
		f.Add(seed)
	}
	l := store.DefaultLimits
	f.Fuzz(func(t *testing.T, key string) {
		if err := l.CheckKey(key); err != nil {
			var invalid *store.InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("error %v is not an *InvalidError", err)
			}
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

func FuzzParseValue(f *testing.F) {
	for _, seed := range []string{``, `1`, `"text"`, `{"a":[1,2,{"b":null}]}`, `{"a":1,"a":2}`, `1e400`, "\"\xff\"", `[[[[`, `1 2`, ` true `, `{"\u0000":"x"}`, strings.Repeat("[", 40) + strings.Repeat("]", 40)} {
		f.Add([]byte(seed))
	}
	l := store.DefaultLimits
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := l.ParseValue(b)
		if err != nil {
			var invalid *store.InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("error %v is not an *InvalidError", err)
			}
			return
		}
		// An accepted value is valid, compact JSON within the limits, and
		// parsing it again changes nothing.
		if !json.Valid(v) || len(v) > l.ValueBytes || !utf8.Valid(v) {
			t.Fatalf("accepted %q as %q", b, v)
		}
		again, err := l.ParseValue(v)
		if err != nil || !bytes.Equal(again, v) {
			t.Fatalf("re-parsing %q gave %q, %v", v, again, err)
		}
	})
}

// Zero limits take the defaults; set ones stay.
func TestLimitsWithDefaults(t *testing.T) {
	got := store.Limits{KeysPerOwner: 3}.WithDefaults()
	want := store.DefaultLimits
	want.KeysPerOwner = 3
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// The inspector's filter folds case as JavaScript's toLowerCase does, so
// that the page places a pushed key where the server would (the browser
// test TestBrowserFilterAgreesWithTheServer holds the two equal).
func TestMatchesFoldsCaseAsJavaScriptDoes(t *testing.T) {
	for _, tc := range []struct {
		key, filter string
		want        bool
	}{
		{"İsmir", "is", false}, {"İsmir", "i̇s", true}, {"İsmir", "İS", true},
		{"ΚΌΣΜΟΣ", "ος", true}, {"ΚΌΣΜΟΣ", "οσ", false}, {"σοφός", "ΟΣ", false},
		{"STRASSE", "ss", true}, {"straße", "ss", false}, {"ǅemal", "ǆ", true},
		{"Global", "LOB", true}, {"any", "", true},
	} {
		if got := store.Matches(tc.key, tc.filter); got != tc.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tc.key, tc.filter, got, tc.want)
		}
	}
}
