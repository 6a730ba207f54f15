// Command seed is the seed's "Practical Examples" page, NiceGUI's
// app.storage chapter, written on package scopes: go run ./examples/seed.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/storagescopes/app/scopes"
	"github.com/storagescopes/app/store"
)

// The page's bound controls, each one line, like the seed's bind_value.
var (
	greeting = scopes.Text(store.User, "username", "Guest")
	name     = scopes.Input(store.User, "username", "Your name")
	message  = scopes.Input(store.General, "global_text", "Global Message")
	note     = scopes.Input(store.User, "user_note", "Your Persistent Note")
	tabData  = scopes.Input(store.Tab, "tab_data", "Tab-Specific Data")
	darkMode = scopes.Checkbox(store.User, "dark_mode", "Dark Mode")
)

func main() {
	addr := flag.String("addr", "localhost:8090", "address to serve on (:0 picks a free port)")
	db := flag.String("db", "data/seed.db", "the SQLite database, made if missing")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *db); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr, db string) error {
	st, err := store.Open(ctx, db, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	// No secret given: the cookie's is made once and kept in the database.
	app, err := scopes.New(scopes.Config{Store: st, Controls: []scopes.Control{greeting, name, message, note, tabData, darkMode}})
	if err != nil {
		return err
	}
	defer app.Close()

	r := chi.NewRouter()
	app.Mount(r)
	r.With(app.Identify).Get("/", app.Handle(func(w http.ResponseWriter, r *http.Request) error {
		// app.storage.user['last_visited_page'] = '/'
		if _, err := scopes.User(r).Set(r.Context(), "last_visited_page", r.URL.Path); err != nil {
			return err
		}
		return scopes.Render(w, r, http.StatusOK, page())
	}))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("serving the seed's page: url=http://%s\n", ln.Addr())
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		app.Close() // the live connections, which Shutdown does not track
		srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
