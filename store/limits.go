package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits bound what one owner may keep and one value may hold. A zero
// field takes its value from DefaultLimits.
type Limits struct {
	KeyRunes       int // characters in a key
	ValueBytes     int // bytes of one JSON value
	JSONDepth      int // nesting of arrays and objects in a value
	KeysPerOwner   int // keys of one scope owner, in every scope
	TabsPerUser    int // tabs with stored keys per user; a new one evicts the least recently used
	ClientsPerUser int // client (page-load) scopes per user; likewise
}

// DefaultLimits are the documented limits (the README's configuration).
var DefaultLimits = Limits{KeyRunes: 128, ValueBytes: 16 << 10, JSONDepth: 32, KeysPerOwner: 1000,
	TabsPerUser: 100, ClientsPerUser: 100}

// WithDefaults fills in the zero fields.
func (l Limits) WithDefaults() Limits {
	for _, f := range []struct{ v, def *int }{
		{&l.KeyRunes, &DefaultLimits.KeyRunes}, {&l.ValueBytes, &DefaultLimits.ValueBytes},
		{&l.JSONDepth, &DefaultLimits.JSONDepth}, {&l.KeysPerOwner, &DefaultLimits.KeysPerOwner},
		{&l.TabsPerUser, &DefaultLimits.TabsPerUser}, {&l.ClientsPerUser, &DefaultLimits.ClientsPerUser},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return l
}

// MaxMutations bounds one Apply (SQLite reads its keys in one statement).
const MaxMutations = 64

// Check refuses mutations that no scope may take: too many for one write,
// a key named twice, a key that breaks CheckKey or a value over the size.
// Both backends check each Apply before it is queued (it is the caller's
// mistake, not the batch's); the dictionaries kept in memory (MemDict) check each
// change.
func (l Limits) Check(muts ...Mutation) error {
	if len(muts) == 0 || len(muts) > MaxMutations {
		return fmt.Errorf("store: apply: %d mutations, want 1 to %d", len(muts), MaxMutations)
	}
	for i, m := range muts {
		for _, earlier := range muts[:i] {
			if earlier.Owner == m.Owner && earlier.Key == m.Key {
				return fmt.Errorf("store: apply: %s/%s named twice", m.Owner, m.Key)
			}
		}
		if err := l.CheckKey(m.Key); err != nil {
			return err
		}
		if !m.Increment {
			if err := l.CheckSize(m.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckKey accepts 1 to KeyRunes printable characters. A key must also be
// usable as one URL path segment, so "/" and the names "." and ".." are
// refused.
func (l Limits) CheckKey(key string) error {
	switch {
	case key == "":
		return invalid("key is empty")
	case !utf8.ValidString(key):
		return invalid("key is not valid UTF-8")
	case utf8.RuneCountInString(key) > l.KeyRunes:
		return invalid("key is longer than %d characters", l.KeyRunes)
	case key == "." || key == "..":
		return invalid(`key may not be "." or ".."`)
	case strings.ContainsRune(key, '/'):
		return invalid(`key may not contain "/"`)
	}
	for _, r := range key {
		if !unicode.IsPrint(r) {
			return invalid("key has a control or non-printable character")
		}
	}
	return nil
}

// CheckSize refuses a value larger than ValueBytes.
func (l Limits) CheckSize(v []byte) error {
	if len(v) > l.ValueBytes {
		return &InvalidError{Message: fmt.Sprintf("value is larger than %d bytes", l.ValueBytes), TooLarge: true}
	}
	return nil
}

// ParseValue checks that b is one JSON value within the limits and returns
// it compacted. Beyond json.Valid it refuses invalid UTF-8, duplicate object
// keys, numbers that do not fit a float64 and nesting deeper than
// JSONDepth, so that every stored value means one thing to every reader.
func (l Limits) ParseValue(b []byte) (json.RawMessage, error) {
	if err := l.CheckSize(b); err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, invalid("value is not valid UTF-8")
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, invalid(`value is empty: send a JSON value, e.g. "text", 1, true, null, [] or {}`)
	}
	if c := trimmed[0]; c != '{' && c != '[' && json.Valid(trimmed) {
		return scalar(trimmed)
	}
	return l.walk(b)
}

// walk checks any JSON value token by token, and compacts it.
func (l Limits) walk(b []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := checkJSON(dec, 0, l.JSONDepth); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("value is not one JSON value: unexpected data after it")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, invalid("value is not valid JSON")
	}
	return out.Bytes(), nil
}

// scalar is ParseValue's answer for a valid string, number, bool or null,
// the most common values, found without walking tokens: nothing nests in
// them, and compacted they are themselves.
func scalar(b []byte) (json.RawMessage, error) {
	if c := b[0]; c == '-' || '0' <= c && c <= '9' {
		if _, err := strconv.ParseFloat(string(b), 64); err != nil {
			return nil, invalid("value has a number beyond the range of a 64-bit float")
		}
	}
	return bytes.Clone(b), nil
}

// checkJSON walks one JSON value from dec.
func checkJSON(dec *json.Decoder, depth, maxDepth int) error {
	tok, err := dec.Token()
	if err != nil {
		return invalid("value is not valid JSON")
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth+1 > maxDepth {
			return invalid("value is nested deeper than %d levels", maxDepth)
		}
		seen := map[string]bool{} // of an object's keys
		for dec.More() {
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return invalid("value is not valid JSON")
				}
				key := k.(string)
				if seen[key] {
					return invalid("value has the object key %q twice", key)
				}
				seen[key] = true
			}
			if err := checkJSON(dec, depth+1, maxDepth); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return invalid("value is not valid JSON")
		}
	case json.Number:
		if _, err := strconv.ParseFloat(string(t), 64); err != nil {
			return invalid("value has a number beyond the range of a 64-bit float")
		}
	}
	return nil
}

// NextCount is what an increment stores after v: an integer counts up;
// anything else (no value, not an integer, or the largest one) starts again
// at 1. Every scope counts this way; the Redis scripts do it on the digits
// (lua/prelude.lua), and the conformance suite holds the two together at the
// edges.
func NextCount(v json.RawMessage) json.RawMessage {
	if n, err := strconv.ParseInt(string(v), 10, 64); err == nil && n < math.MaxInt64 {
		return strconv.AppendInt(nil, n+1, 10)
	}
	return json.RawMessage("1")
}
