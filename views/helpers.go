package views

import (
	"context"
	"strconv"
	"strings"

	"github.com/a-h/templ"

	"github.com/storagescopes/app/static"
)

// Asset returns the cache-busting URL of a static file.
func Asset(name string) string { return static.Path(name) }

func fmtInt(n int64) string { return strconv.FormatInt(n, 10) }

// keyParts cuts a key after each "_", "-" or ".", where a line may break:
// a key never breaks inside a word.
func keyParts(key string) []string {
	var parts []string
	for {
		i := strings.IndexAny(key, "_-.")
		if i < 0 || i == len(key)-1 {
			return append(parts, key)
		}
		parts = append(parts, key[:i+1])
		key = key[i+1:]
	}
}

// FeedMax is how many changes the activity feed holds.
const FeedMax = 20

// drawnParts are the parts of a panel that depend only on its scope, title
// and lifetime, drawn in advance: templ resolves, boxes and escapes every
// expression on every render, and these never change. A Panel not made by
// NewPanel has none, and draws them each time.
type drawnParts struct {
	header, tools, lazy string
}

// NewPanel makes the panel of a scope, its unchanging parts drawn once.
func NewPanel(scope, title, lifetime string) (Panel, error) {
	p := Panel{Scope: scope, Title: title, Lifetime: lifetime}
	for _, part := range []struct {
		to *string
		c  templ.Component
	}{
		{&p.drawn.header, panelHeader(p)},
		{&p.drawn.tools, inspectorTools(p)},
		{&p.drawn.lazy, lazyPanel(p)},
	} {
		var b strings.Builder
		if err := part.c.Render(context.Background(), &b); err != nil {
			return Panel{}, err
		}
		*part.to = b.String()
	}
	return p, nil
}

// yesNo is a survival cell's answer.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
