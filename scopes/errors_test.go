package scopes_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/storagescopes/app/scopes"
	"github.com/storagescopes/app/store"
)

// A program's own handler that returns a conflict (a write based on a
// version someone changed since) gets the same answer as the app's
// controls and API, from the one adapter: 412 with the key as it is now,
// as JSON under /api/ and with "Take theirs" / "Keep mine" elsewhere.
func TestAConflictIsAnsweredByTheAdapter(t *testing.T) {
	app, st := newApp(t)
	current, err := store.NewDict(st, store.GeneralOwner, store.Origin{API: true}).Set(context.Background(), "k", "theirs")
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	app.Mount(r)
	stale := app.Handle(func(w http.ResponseWriter, r *http.Request) error {
		_, err := scopes.General(r).SetIf(r.Context(), "k", "mine", current.Version+1)
		return err
	})
	r.With(app.Identify).Post("/api/mine", stale)
	r.With(app.Identify).Post("/mine", stale)
	srv := httptest.NewServer(r)
	defer srv.Close()

	for _, tc := range []struct{ path, want string }{
		{"/api/mine", `"value":"theirs"`},
		{"/mine", "Take theirs"},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+tc.path, nil)
		req.Header.Set("HX-Request", "true")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusPreconditionFailed || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %d %s, want 412 with %s", tc.path, res.StatusCode, body, tc.want)
		}
		if tag := res.Header.Get("ETag"); tag != scopes.ETag(current.Version) {
			t.Errorf("%s: ETag %s, want %s", tc.path, tag, scopes.ETag(current.Version))
		}
		if tc.path == "/api/mine" && !json.Valid(body) {
			t.Errorf("%s: not JSON: %s", tc.path, body)
		}
	}
	if v, _ := store.Get(context.Background(), store.NewDict(st, store.GeneralOwner, store.Origin{}), "k", ""); v != "theirs" {
		t.Errorf("the refused write changed the key to %q", v)
	}
}
