package handlers

import (
	"net/http"

	"github.com/storagescopes/app/scopes"
)

// Demo starts the program again in place, for the footer's buttons: to
// see what survives a restart without a terminal. cmd/web provides it.
type Demo struct {
	Restart func() // a graceful stop (live pages told, store closed), then a start
	Crash   func() // at once, with no shutdown work, as kill -9 would
}

// handleDemo answers a demo button: 404 when the buttons are off, 409
// while a restart is under way, else 202, and then it restarts or crashes.
func (s *Server) handleDemo(crash bool) scopes.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.demo == nil {
			return notFound("not found")
		}
		if !s.restarting.CompareAndSwap(false, true) {
			return &scopes.Error{Status: http.StatusConflict, Message: "A restart is already under way."}
		}
		msg := "Restarting: the page reconnects by itself."
		if crash {
			msg = "Crashing: the server starts again by itself, and the page reconnects."
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(msg))
		// The answer goes out first; then the process stops.
		if err := http.NewResponseController(w).Flush(); err != nil {
			s.app.Logger(r.Context()).Warn("demo: flush the answer", "error", err)
		}
		if crash {
			s.app.Logger(r.Context()).Warn("crashing, as the demo button asked")
			go s.demo.Crash()
		} else {
			s.app.Logger(r.Context()).Info("restarting, as the demo button asked")
			go s.demo.Restart()
		}
		return nil
	}
}
