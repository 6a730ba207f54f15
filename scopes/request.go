package scopes

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
)

// Reading what a request sends: a form, a bound control's value, the
// version a write is based on, a key in the URL.

// controlValue is the value a form's change of the control b stands for:
// text as a string, a checkbox as true or false, a range as its number, a
// select as its choice. What the control cannot hold is refused.
func controlValue(b viewmodel.Binding, form url.Values) (any, error) {
	text := form.Get("value")
	switch b.Kind {
	case "checkbox":
		return form.Has("value"), nil
	case "range":
		n, err := strconv.Atoi(text)
		if err != nil || n < b.Min || n > b.Max {
			return nil, badRequest(fmt.Sprintf("%s must be a whole number from %d to %d", b.Label, b.Min, b.Max))
		}
		return n, nil
	case "select":
		names := make([]string, len(b.Options))
		for i, o := range b.Options {
			if o.Value == text {
				return text, nil
			}
			names[i] = cmp.Or(o.Value, "none")
		}
		return nil, badRequest(fmt.Sprintf("%s must be one of %s", b.Label, strings.Join(names, ", ")))
	}
	if !utf8.ValidString(text) {
		return nil, badRequest("value is not valid UTF-8")
	}
	return text, nil
}

// ParseForm parses a form body, with a clear error for a body too large.
func ParseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return badRequest("the form could not be read")
	}
	return nil
}

// ETag is a version as an entity tag.
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// editVersion is the version a bound control's edit is based on, as the
// page names it in If-Match: "N" the key must be at version N, "0" it must
// not exist yet; without one (another client than the page), 0: any.
func editVersion(r *http.Request) (int64, error) {
	h := r.Header.Get("If-Match")
	if h == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(h), `"`), 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest(`If-Match must be the version the edit is based on, as an entity tag such as "42"`)
	}
	if n == 0 {
		return store.Absent, nil
	}
	return n, nil
}

// Key returns the {key} of the URL, decoded and checked. chi matches
// on the escaped path when the URL has escapes that decoding would lose.
func (s *App) Key(r *http.Request) (string, error) {
	key := chi.URLParam(r, "key")
	if r.URL.RawPath != "" {
		var err error
		if key, err = url.PathUnescape(key); err != nil {
			return "", badRequest("key is not a valid URL path segment")
		}
	}
	return key, s.limits.CheckKey(key)
}

// CheckFilter refuses a filter of keys (a query parameter name) that no
// key could contain: invalid text, or longer than a key.
func (s *App) CheckFilter(name, filter string) error {
	if !utf8.ValidString(filter) || utf8.RuneCountInString(filter) > s.limits.KeyRunes {
		return badRequest(fmt.Sprintf("%s must be valid text of at most %d characters", name, s.limits.KeyRunes))
	}
	return nil
}
