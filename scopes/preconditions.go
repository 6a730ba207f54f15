package scopes

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/storagescopes/app/store"
)

// Conditional writes as RFC 9110 has them (§13.1.1 If-Match, §13.1.2
// If-None-Match): an entity tag is a key's version as ETag makes it, "N";
// "0" is this API's own tag of a key that does not exist.

// Precondition is what a request's If-Match and If-None-Match ask of the
// key it writes.
type Precondition struct {
	ifMatch, ifNoneMatch *tagList // nil: no such header
}

// tagList is one header's value: * or entity tags.
type tagList struct {
	any  bool
	tags []entityTag
}

type entityTag struct {
	weak   bool
	opaque string // with its quotes
}

// errMalformedTag is a header that is neither * nor a list of entity tags.
func errMalformedTag(name string) error {
	return badRequest(name + ` must be * or a list of entity tags, such as "42" or "3", "4" (W/"3" is a weak tag)`)
}

// ParsePrecondition reads If-Match and If-None-Match (a malformed one is a
// 400).
func ParsePrecondition(h http.Header) (Precondition, error) {
	var p Precondition
	var err error
	if p.ifMatch, err = parseTags(h, "If-Match"); err != nil {
		return p, err
	}
	p.ifNoneMatch, err = parseTags(h, "If-None-Match")
	return p, err
}

func parseTags(h http.Header, name string) (*tagList, error) {
	values := h.Values(name)
	if len(values) == 0 {
		return nil, nil
	}
	s := strings.TrimSpace(strings.Join(values, ","))
	if s == "*" {
		return &tagList{any: true}, nil
	}
	l := &tagList{}
	for s != "" {
		var t entityTag
		if rest, ok := strings.CutPrefix(s, "W/"); ok {
			t.weak, s = true, rest
		}
		end := strings.IndexByte(s[min(1, len(s)):], '"') + 1
		if !strings.HasPrefix(s, `"`) || end == 0 {
			return nil, errMalformedTag(name)
		}
		t.opaque = s[:end+1]
		if strings.ContainsAny(t.opaque[1:end], "\" \t") {
			return nil, errMalformedTag(name)
		}
		l.tags = append(l.tags, t)
		s = strings.TrimSpace(s[end+1:])
		if s == "" {
			break
		}
		if s[0] != ',' {
			return nil, errMalformedTag(name)
		}
		s = strings.TrimLeft(s[1:], " \t,")
	}
	if len(l.tags) == 0 {
		return nil, errMalformedTag(name)
	}
	return l, nil
}

// tagOf is current's entity tag: "0" when it does not exist.
func tagOf(current store.Entry) string { return ETag(current.Version) }

// holds says whether the precondition holds for the key as it is now
// (Version 0: it does not exist): If-Match, then If-None-Match (§13.2.2).
func (p Precondition) holds(current store.Entry) bool {
	exists := current.Version > 0
	if p.ifMatch != nil {
		if p.ifMatch.any && !exists {
			return false
		}
		if !p.ifMatch.any && !slices.ContainsFunc(p.ifMatch.tags, func(t entityTag) bool {
			return !t.weak && t.opaque == tagOf(current) // strong comparison
		}) {
			return false
		}
	}
	if p.ifNoneMatch != nil {
		if p.ifNoneMatch.any {
			return !exists
		}
		for _, t := range p.ifNoneMatch.tags {
			if exists && t.opaque == tagOf(current) { // weak comparison
				return false
			}
		}
	}
	return true
}

// version is the version a conditional write can name to keep p by
// itself, atomically, when p says exactly one: If-Match alone with one
// strong tag this app gave, or If-None-Match: * alone.
func (p Precondition) version() (int64, bool) {
	switch {
	case p.ifMatch != nil && p.ifNoneMatch == nil && !p.ifMatch.any && len(p.ifMatch.tags) == 1 && !p.ifMatch.tags[0].weak:
		n, err := strconv.ParseInt(strings.Trim(p.ifMatch.tags[0].opaque, `"`), 10, 64)
		if err != nil || n < 0 || ETag(n) != p.ifMatch.tags[0].opaque { // "05" is no tag of 5
			return 0, false
		}
		if n == 0 {
			return store.Absent, true
		}
		return n, true
	case p.ifMatch == nil && p.ifNoneMatch != nil && p.ifNoneMatch.any:
		return store.Absent, true
	}
	return 0, false
}

// tries bounds how often a write checked against the key as it was read
// is tried again when the key changed in between.
const tries = 10

// errBusyKey is a key that kept changing while a write was checked.
var errBusyKey = &Error{Status: http.StatusServiceUnavailable, RetryAfter: 1,
	Message: "the key changed too often while this write was checked; nothing was changed; try again"}

// Set stores value under key of d if p holds, as one conditional write: a
// precondition that fails is a *store.ConflictError with the key as it is
// (412).
func (p Precondition) Set(ctx context.Context, d store.Dict, key string, value any) (store.Entry, error) {
	if p.ifMatch == nil && p.ifNoneMatch == nil {
		return d.Set(ctx, key, value)
	}
	if v, ok := p.version(); ok {
		return d.SetIf(ctx, key, value, v)
	}
	for range tries {
		current, err := current(ctx, d, key)
		if err != nil {
			return store.Entry{}, err
		}
		if !p.holds(current) {
			return store.Entry{}, &store.ConflictError{Current: current}
		}
		v := current.Version
		if v == 0 {
			v = store.Absent
		}
		e, err := d.SetIf(ctx, key, value, v)
		if !errors.Is(err, store.ErrConflict) {
			return e, err
		}
	}
	return store.Entry{}, errBusyKey
}

// Delete removes key of d if p holds. A key that does not exist is
// store.ErrNotFound (404) whatever p says (§13.2.1).
func (p Precondition) Delete(ctx context.Context, d store.Dict, key string) (int64, error) {
	if p.ifMatch == nil && p.ifNoneMatch == nil {
		return d.Delete(ctx, key)
	}
	for range tries {
		current, err := current(ctx, d, key)
		if err != nil {
			return 0, err
		}
		if current.Version == 0 {
			return 0, store.ErrNotFound
		}
		if !p.holds(current) {
			return 0, &store.ConflictError{Current: current}
		}
		v, err := d.DeleteIf(ctx, key, current.Version)
		if !errors.Is(err, store.ErrConflict) {
			return v, err
		}
	}
	return 0, errBusyKey
}

// current is key of d as it is now (Version 0: it does not exist).
func current(ctx context.Context, d store.Dict, key string) (store.Entry, error) {
	e, err := d.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return store.Entry{Key: key}, nil
	}
	return e, err
}
