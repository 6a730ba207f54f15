package scopes

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// Answers drawn as HTML: a page or a fragment, buffered; the answer to a
// write (the change it made, as a push would carry it); a conflict.

// renderBuffers are render's buffers, reused: a page's buffer grown afresh
// each time costs a good part of drawing it.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putBuffer returns a render buffer to the pool, unless it grew outsized
// (left to the collector).
func putBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= 1<<20 {
		buf.Reset()
		renderBuffers.Put(buf)
	}
}

// Render writes c with status, buffered so that a failed render never sends
// half a page. Knowing the length, the answer goes out in one piece rather
// than chunked.
func Render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) error {
	buf := renderBuffers.Get().(*bytes.Buffer)
	defer putBuffer(buf)
	if err := c.Render(r.Context(), buf); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	h := w.Header()
	h["Content-Type"], h["Cache-Control"] = htmlUTF8, noStore
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// RenderChange answers a write of d with message and the change c it made,
// as the page that asked sees it: its parts, out of band, as a push would
// carry them to the other pages.
func RenderChange(w http.ResponseWriter, r *http.Request, d store.Dict, c store.Change, message string) error {
	return renderChange(w, r, d, c, false, message)
}

// renderChange is RenderChange; originOnly draws, of the bound controls,
// only who changed them (for the answer to the control that did).
func renderChange(w http.ResponseWriter, r *http.Request, d store.Dict, c store.Change, originOnly bool, message string) error {
	id := Who(r)
	counted, err := d.View(r.Context(), store.Window{})
	if err != nil {
		return err
	}
	ch := id.app.heads.Change(c, counted.Keys, counted.Version, id.Viewer, time.Now())
	ch.OriginOnly, ch.Message = originOnly, message
	return Render(w, r, http.StatusOK, views.ChangeAnswer(ch))
}

// renderConflict answers a bound control's change refused because someone
// changed the value first (412), with who did, and their value.
func renderConflict(w http.ResponseWriter, r *http.Request, current store.Entry) error {
	c := views.Conflict{Who: "by someone", Version: current.Version, Theirs: viewmodel.DisplayText(current.Value)}
	if who := viewmodel.Origin(current.Origin, current.UpdatedAt, Who(r).Viewer, time.Now()).Who(); who != "" {
		c.Who = who
	}
	if current.Version == 0 {
		c.Who, c.Theirs = "(it was deleted)", ""
	}
	w.Header().Set("ETag", ETag(current.Version))
	return Render(w, r, http.StatusPreconditionFailed, views.ConflictStatus(c))
}
