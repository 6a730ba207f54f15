package handlers_test

import (
	"strings"
	"testing"
)

// An error takes the shape of the request that met it: a page for a
// browser navigation (the app's look, the message, a way back), JSON under
// /api/, the bare message for htmx to show in the control's status.
func TestErrorsTakeTheShapeOfTheirRequest(t *testing.T) {
	a := MustStart(t)
	b := a.NewBrowser(t)

	nav := b.Do("GET", "/no-such-page", nil, map[string]string{"HX-Request": "", "X-Tab-ID": ""})
	if nav.Status != 404 || !strings.HasPrefix(nav.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("navigation to a missing page: %d %s", nav.Status, nav.Header.Get("Content-Type"))
	}
	doc := mustParse(t, nav.Body)
	if page := doc.Find(`[data-testid="error-page"]`); page.AttrOr("data-status", "") != "404" ||
		page.Find("h1").Text() != "Not Found" || page.Find(`a[href="/"]`).Length() != 1 {
		t.Errorf("error page: %s", nav.Body)
	}
	if doc.Find(`meta[http-equiv="refresh"]`).Length() != 0 {
		t.Errorf("a 404 page reloads itself: it will not pass by itself")
	}

	if api := b.Do("GET", "/api/storage/nowhere", nil, map[string]string{"HX-Request": ""}); api.Status != 404 ||
		!strings.HasPrefix(api.Header.Get("Content-Type"), "application/json") || !strings.HasPrefix(api.Body, `{"error":`) {
		t.Errorf("API 404: %d %s %s", api.Status, api.Header.Get("Content-Type"), api.Body)
	}
	if frag := b.Do("GET", "/no-such-page", nil, nil); frag.Status != 404 || frag.Body != "not found" {
		t.Errorf("htmx 404: %d %q", frag.Status, frag.Body)
	}
}
