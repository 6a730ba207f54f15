package handlers

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// routes is every URL of the demo: what package scopes mounts, then the
// pages, their fragments, the demo buttons and the JSON API, each knowing
// who asks (Identify) and compressed for clients that accept it.
func (s *Server) routes() http.Handler {
	app := s.app
	r := chi.NewRouter()
	app.Mount(r)
	r.Group(func(r chi.Router) {
		r.Use(app.Identify, app.Compress)

		// The pages and their fragments (htmx).
		r.Get("/", app.Handle(s.handlePage("/")))
		r.Get("/settings", app.Handle(s.handlePage("/settings")))
		r.Post("/scopes/{scope}/visit", app.Handle(s.handleVisit))
		r.Get("/scopes/{scope}/entries", app.Handle(s.handleEntries))
		r.Get("/scopes/{scope}/entries/{key}", app.Handle(s.handleEntryValue))
		r.With(app.LimitWrites).Post("/scopes/{scope}/entries", app.Handle(s.handleEntrySet))
		r.With(app.LimitWrites).Delete("/scopes/{scope}/entries", app.Handle(s.handleEntriesClear))
		r.With(app.LimitWrites).Delete("/scopes/{scope}/entries/{key}", app.Handle(s.handleEntryDelete))

		// The footer's demo buttons (404 when they are off).
		r.Post("/demo/restart", app.Handle(s.handleDemo(false)))
		r.Post("/demo/crash", app.Handle(s.handleDemo(true)))

		// The JSON API.
		r.Get("/api/storage/{scope}", app.Handle(s.handleAPIList))
		r.With(app.LimitWrites).Delete("/api/storage/{scope}", app.Handle(s.handleAPIClear))
		r.Get("/api/storage/{scope}/{key}", app.Handle(s.handleAPIGet))
		r.With(app.LimitWrites).Put("/api/storage/{scope}/{key}", app.Handle(s.handleAPIPut))
		r.With(app.LimitWrites).Delete("/api/storage/{scope}/{key}", app.Handle(s.handleAPIDelete))
	})
	return r
}
