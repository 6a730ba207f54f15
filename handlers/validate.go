package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits bound what one request may store. Zero fields take the defaults.
type Limits struct {
	KeysPerOwner int   // keys in one browser or client scope (default 1,000; the store has its own)
	KeyRunes     int   // characters in a key (default 128)
	ValueBytes   int   // bytes of one JSON value (default 16 KiB)
	BodyBytes    int64 // bytes of a request body (default 64 KiB)
	JSONDepth    int   // nesting of arrays and objects (default 32)
}

// DefaultLimits are the limits of PRODUCT.md.
var DefaultLimits = Limits{KeysPerOwner: 1000, KeyRunes: 128, ValueBytes: 16 << 10, BodyBytes: 64 << 10, JSONDepth: 32}

func (l Limits) withDefaults() Limits {
	if l.KeysPerOwner <= 0 {
		l.KeysPerOwner = DefaultLimits.KeysPerOwner
	}
	if l.KeyRunes <= 0 {
		l.KeyRunes = DefaultLimits.KeyRunes
	}
	if l.ValueBytes <= 0 {
		l.ValueBytes = DefaultLimits.ValueBytes
	}
	if l.BodyBytes <= 0 {
		l.BodyBytes = DefaultLimits.BodyBytes
	}
	if l.JSONDepth <= 0 {
		l.JSONDepth = DefaultLimits.JSONDepth
	}
	return l
}

// checkKey accepts 1 to max printable characters. A key must also be usable
// as one URL path segment, so "/" and the names "." and ".." are refused.
func checkKey(key string, max int) error {
	switch {
	case key == "":
		return badRequest("key is empty")
	case !utf8.ValidString(key):
		return badRequest("key is not valid UTF-8")
	case utf8.RuneCountInString(key) > max:
		return badRequest(fmt.Sprintf("key is longer than %d characters", max))
	case key == "." || key == "..":
		return badRequest(`key may not be "." or ".."`)
	case strings.ContainsRune(key, '/'):
		return badRequest(`key may not contain "/"`)
	}
	for _, r := range key {
		if !unicode.IsPrint(r) {
			return badRequest("key has a control or non-printable character")
		}
	}
	return nil
}

// parseValue checks that b is one JSON value within the limits and returns it
// compacted. Beyond json.Valid it refuses invalid UTF-8, duplicate object
// keys, numbers that do not fit a float64 and nesting deeper than maxDepth,
// so that every stored value means one thing to every reader.
func parseValue(b []byte, l Limits) (json.RawMessage, error) {
	if err := checkSize(b, l); err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, badRequest("value is not valid UTF-8")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, badRequest(`value is empty: send a JSON value, e.g. "text", 1, true, null, [] or {}`)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := checkJSON(dec, 0, l.JSONDepth); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("value is not one JSON value: unexpected data after it")
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, badRequest("value is not valid JSON")
	}
	return out.Bytes(), nil
}

// checkSize refuses a JSON value larger than the limit.
func checkSize(b []byte, l Limits) error {
	if len(b) > l.ValueBytes {
		return &Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("value is larger than %d bytes", l.ValueBytes)}
	}
	return nil
}

// checkJSON walks one JSON value from dec.
func checkJSON(dec *json.Decoder, depth, maxDepth int) error {
	tok, err := dec.Token()
	if err != nil {
		return badRequest("value is not valid JSON")
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth+1 > maxDepth {
			return badRequest(fmt.Sprintf("value is nested deeper than %d levels", maxDepth))
		}
		if t == '[' {
			for dec.More() {
				if err := checkJSON(dec, depth+1, maxDepth); err != nil {
					return err
				}
			}
		} else {
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return badRequest("value is not valid JSON")
				}
				key := k.(string)
				if seen[key] {
					return badRequest(fmt.Sprintf("value has the object key %q twice", key))
				}
				seen[key] = true
				if err := checkJSON(dec, depth+1, maxDepth); err != nil {
					return err
				}
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return badRequest("value is not valid JSON")
		}
	case json.Number:
		if _, err := strconv.ParseFloat(string(t), 64); err != nil {
			return badRequest("value has a number beyond the range of a 64-bit float")
		}
	}
	return nil
}

// checkUUID accepts a canonical textual UUID (any version), as made by
// crypto.randomUUID in the browser, and returns it in lower case.
func checkUUID(what, id string) (string, error) {
	if id == "" {
		return "", badRequest(what + " is missing")
	}
	if len(id) != 36 {
		return "", badRequest(what + " is not a UUID")
	}
	for i, c := range []byte(id) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", badRequest(what + " is not a UUID")
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return "", badRequest(what + " is not a UUID")
			}
		}
	}
	return strings.ToLower(id), nil
}
