package scopes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/a-h/templ"
	"github.com/go-chi/chi/v5"

	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// Control is a control bound to one key of one scope, the seed's
// bind_value: declared once, given to Config.Controls, drawn with
// @control. It shows the key's value and who set it last, posts each
// change as a write conditional on the version it shows (a change made
// meanwhile is a conflict, offered, never overwritten), and follows the
// changes other pages make, live.
type Control struct{ b viewmodel.Binding }

// Option is one choice of a Select.
type Option struct{ Value, Label string }

// Input is a text input labelled label, bound to key of scope (a string).
func Input(scope store.Scope, key, label string) Control {
	return Control{viewmodel.Binding{Scope: scope, Key: key, Label: label, Kind: "text"}}
}

// TextArea is a text area labelled label, bound to key of scope (a string).
func TextArea(scope store.Scope, key, label string) Control {
	return Control{viewmodel.Binding{Scope: scope, Key: key, Label: label, Kind: "textarea"}}
}

// Checkbox is a checkbox labelled label, bound to key of scope (a bool).
func Checkbox(scope store.Scope, key, label string) Control {
	return Control{viewmodel.Binding{Scope: scope, Key: key, Label: label, Kind: "checkbox"}}
}

// Range is a slider labelled label from lo to hi, bound to key of scope (a
// whole number), showing def until it is set.
func Range(scope store.Scope, key, label string, lo, hi, def int) Control {
	return Control{viewmodel.Binding{Scope: scope, Key: key, Label: label, Kind: "range", Min: lo, Max: hi,
		Def: fmt.Sprint(def)}}
}

// Select is a choice among options labelled label, bound to key of scope
// (the chosen option's value, a string).
func Select(scope store.Scope, key, label string, options ...Option) Control {
	b := viewmodel.Binding{Scope: scope, Key: key, Label: label, Kind: "select"}
	for _, o := range options {
		b.Options = append(b.Options, views.Option{Value: o.Value, Label: o.Label})
	}
	return Control{b}
}

// Text shows key of scope as text, def while it is not set (or empty), and
// follows its changes live: the seed's greeting, Hello, {username}!
func Text(scope store.Scope, key, def string) Control {
	return Control{viewmodel.Binding{Scope: scope, Key: key, Kind: viewmodel.KindText, Def: def}}
}

// Render draws the control with its key's value, for the request of ctx
// (inside App.Identify). A tab's or a page load's control drawn before the
// page's script names them (a page's first load) loads itself once the page
// is up. A control not given to Config.Controls is an error: it could not
// save.
func (c Control) Render(ctx context.Context, w io.Writer) error {
	id := identityOf(ctx)
	if id == nil {
		return errNoIdentity
	}
	if !slices.ContainsFunc(id.app.heads.Controls(), func(b viewmodel.Binding) bool { return equalBindings(b, c.b) }) {
		return fmt.Errorf("scopes: the control %s/%s is not among Config.Controls", c.b.Scope, c.b.Key)
	}
	return id.app.drawControl(ctx, w, id, c.b)
}

// drawControl draws b as id sees it now.
func (s *App) drawControl(ctx context.Context, w io.Writer, id *Identity, b viewmodel.Binding) error {
	d, err := dictOf(ctx, b.Scope)
	if err != nil {
		if (b.Scope == store.Tab && id.TabID == "") || (b.Scope == store.Client && id.ClientID == "") {
			return views.BoundLoader(viewmodel.FieldOf(b, store.Entry{}, id.Viewer, time.Now())).Render(ctx, w)
		}
		return err
	}
	e, err := d.Get(ctx, b.Key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return views.BoundField(e.Version, viewmodel.FieldOf(b, e, id.Viewer, time.Now())).Render(ctx, w)
}

func equalBindings(a, b viewmodel.Binding) bool {
	return a.Scope == b.Scope && a.Key == b.Key && a.Kind == b.Kind
}

// handleField draws one bound control (GET /scopes/{scope}/fields/{key},
// kind=…): how a tab's control loads itself.
func (s *App) handleField(w http.ResponseWriter, r *http.Request) error {
	scope, key, kind := store.Scope(chi.URLParam(r, "scope")), chi.URLParam(r, "key"), r.URL.Query().Get("kind")
	for b := range s.heads.Bindings(scope, key) {
		if kind == "" || b.Kind == kind {
			return Render(w, r, http.StatusOK, templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
				return s.drawControl(ctx, w, Who(r), b)
			}))
		}
	}
	return notFound(fmt.Sprintf("no field %q in scope %q", key, scope))
}

// handleFieldChange stores a bound control's new value (see
// controlValue). The control names the version its edit is based on
// (If-Match); a value changed since by someone else is not overwritten: the
// answer (serveConflict) says who changed it and offers both.
func (s *App) handleFieldChange(w http.ResponseWriter, r *http.Request) error {
	scope, key := store.Scope(chi.URLParam(r, "scope")), chi.URLParam(r, "key")
	b, ok := s.heads.Binding(scope, key)
	if !ok {
		return notFound(fmt.Sprintf("no field %q in scope %q", key, scope))
	}
	if err := ParseForm(r); err != nil {
		return err
	}
	version, err := editVersion(r)
	if err != nil {
		return err
	}
	value, err := controlValue(b, r.PostForm)
	if err != nil {
		return err
	}
	d, err := Dict(r, scope)
	if err != nil {
		return err
	}
	e, err := d.SetIf(r.Context(), key, value, version)
	var conflict *store.ConflictError
	if errors.As(err, &conflict) && ownChange(Who(r), conflict.Current) {
		// The key moved on from the edit's version by this tab's own last
		// change, to the very value sent: the save whose answer was lost,
		// sent again by a waiting edit. It is saved; nothing is written
		// again. (Another value is a conflict: it may be an older save
		// arriving after a newer one.)
		if raw, _ := s.limits.Encode(value); bytes.Equal(raw, conflict.Current.Value) {
			e, err = conflict.Current, nil
		}
	}
	if err != nil {
		return err // a conflict too: the adapter answers it, offering both
	}
	w.Header().Set("ETag", ETag(e.Version))
	return renderChange(w, r, d, viewmodel.SetBy(scope, e), true, "Saved")
}

// Head is what a page with bound controls needs in its <head>: the
// stylesheet and the page's script.
func Head() templ.Component { return views.ScopesHead() }

// Live is the page's live connection, with its indicator, and htmx: last in
// the <body>.
func Live() templ.Component { return views.ScopesLive() }

// ownChange says the current entry was last changed by the tab that asks
// (through a page, not the API): not someone else's change.
func ownChange(id *Identity, current store.Entry) bool {
	o := current.Origin
	return current.Version > 0 && id.Tab > 0 && !o.API && !id.API && o.UserID == id.UserID && o.Tab == id.Tab
}
