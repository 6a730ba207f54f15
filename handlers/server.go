// Package handlers is the demo: the seed's page made real, with every
// scope's panel, inspector, presence and feed, its JSON API and its demo
// buttons, written on package scopes' exported API like any other
// program (examples/seed is the short one).
package handlers

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/scopes"
	"github.com/storagescopes/app/store"
)

// Config is what the demo needs; cmd/web fills it from flags.
type Config struct {
	scopes.Config
	// Demo, if set, serves the footer's Restart and Crash server buttons.
	Demo *Demo
}

// Server serves the demo. Build it with New.
type Server struct {
	app        *scopes.App
	store      store.Store
	handler    http.Handler
	demo       *Demo
	restarting atomic.Bool // a demo restart is under way
}

// Controls are the demo page's bound controls, in the order its panels
// draw them.
var Controls = []scopes.Control{
	scopes.Input(store.General, "global_text", "Global Message"),
	scopes.TextArea(store.General, "shared_notes", "Shared notes"),
	scopes.Input(store.User, viewmodel.KeyUsername, "Your name"),
	scopes.Input(store.User, "user_note", "Your Persistent Note"),
	scopes.Checkbox(store.User, "dark_mode", "Dark Mode"),
	scopes.Range(store.User, "font_size", "Font size", 12, 24, 16),
	scopes.Input(store.Browser, "browser_note", "Browser"),
	scopes.Input(store.Tab, "tab_data", "Tab-Specific Data"),
	scopes.Select(store.Tab, "tab_color", "Tab color", scopes.Option{Value: "", Label: "None"},
		scopes.Option{Value: "red", Label: "Red"}, scopes.Option{Value: "amber", Label: "Amber"},
		scopes.Option{Value: "green", Label: "Green"}, scopes.Option{Value: "blue", Label: "Blue"},
		scopes.Option{Value: "purple", Label: "Purple"}),
	scopes.Input(store.Client, "client_note", "Client"),
}

// New builds the demo on a scopes.App with the demo's controls.
func New(cfg Config) (*Server, error) {
	cfg.Controls = Controls
	app, err := scopes.New(cfg.Config)
	if err != nil {
		return nil, err
	}
	s := &Server{app: app, store: cfg.Store, demo: cfg.Demo}
	s.handler = s.routes()
	return s, nil
}

// Close ends the live connections; see scopes.App.Close.
func (s *Server) Close() { s.app.Close() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// badRequest and notFound are the demo's refusals.
func badRequest(msg string) error { return &scopes.Error{Status: http.StatusBadRequest, Message: msg} }

func notFound(format string, args ...any) error {
	return &scopes.Error{Status: http.StatusNotFound, Message: fmt.Sprintf(format, args...)}
}
