package handlers

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"

	"github.com/storagescopes/app/static"
)

// routes is every URL of the app, with the middleware stack.
func (s *Server) routes() (http.Handler, error) {
	compress, err := compression()
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Use(s.numberRequests, s.logRequests, s.countRequests, s.recoverPanics, securityHeaders)
	r.NotFound(s.handle(func(http.ResponseWriter, *http.Request) error { return notFound("not found") }))
	r.MethodNotAllowed(s.handle(func(http.ResponseWriter, *http.Request) error {
		return &Error{Status: http.StatusMethodNotAllowed, Message: "method not allowed"}
	}))

	r.Get("/healthz", s.handle(s.handleHealth))
	r.Handle("/static/*", static.Handler())

	// Everything below knows who is asking: the cookie is read (or made),
	// cross-origin writes are refused and bodies are bounded.
	r.Group(func(r chi.Router) {
		r.Use(s.refuseCrossOrigin, s.limitBody, s.loadIdentity)

		// The live connection of each page (a WebSocket: not compressed).
		r.Get("/live", s.handle(s.handleLive))

		r.Group(func(r chi.Router) {
			r.Use(compress)

			// The pages and their fragments (htmx).
			r.Get("/", s.handle(s.handlePage("/")))
			r.Get("/settings", s.handle(s.handlePage("/settings")))
			r.Post("/scopes/{scope}/visit", s.handle(s.handleVisit))
			r.With(s.limitWrites).Post("/scopes/{scope}/fields/{key}", s.handle(s.handleFieldChange))
			r.Get("/scopes/{scope}/entries", s.handle(s.handleEntries))
			r.Get("/scopes/{scope}/entries/{key}", s.handle(s.handleEntryValue))
			r.With(s.limitWrites).Post("/scopes/{scope}/entries", s.handle(s.handleEntrySet))
			r.With(s.limitWrites).Delete("/scopes/{scope}/entries", s.handle(s.handleEntriesClear))
			r.With(s.limitWrites).Delete("/scopes/{scope}/entries/{key}", s.handle(s.handleEntryDelete))

			// The footer's demo buttons (404 when they are off).
			r.Post("/demo/restart", s.handle(s.handleDemo(false)))
			r.Post("/demo/crash", s.handle(s.handleDemo(true)))

			// The JSON API.
			r.Get("/api/storage/{scope}", s.handle(s.handleAPIList))
			r.With(s.limitWrites).Delete("/api/storage/{scope}", s.handle(s.handleAPIClear))
			r.Get("/api/storage/{scope}/{key}", s.handle(s.handleAPIGet))
			r.With(s.limitWrites).Put("/api/storage/{scope}/{key}", s.handle(s.handleAPIPut))
			r.With(s.limitWrites).Delete("/api/storage/{scope}/{key}", s.handle(s.handleAPIDelete))
		})
	})
	return r, nil
}

// compressMin is the smallest answer worth compressing: one key's change
// (the answer to a write) is smaller, fits a packet or two, and costs more
// to compress than it saves.
const compressMin = 2 << 10

// compression compresses the pages' and the API's answers (gzip, or zstd
// when the client prefers it) for a client that accepts it. The static
// files are compressed once, in advance (package static).
func compression() (func(http.Handler) http.Handler, error) {
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(compressMin), gzhttp.CompressionLevel(gzip.BestSpeed))
	if err != nil {
		return nil, err
	}
	return func(h http.Handler) http.Handler { return wrap(h) }, nil
}
