package handlers

import (
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/storagescopes/app/internal/viewmodel"
	"github.com/storagescopes/app/scopes"
	"github.com/storagescopes/app/store"
	"github.com/storagescopes/app/views"
)

// The page: a full page per path, the panels that load themselves, and the
// bound controls' changes.

// handlePage serves a full page. It only reads: what a page view counts,
// its tab's panel counts as it loads (handleVisit), for only then does the
// server know which tab looks.
func (s *Server) handlePage(path string) scopes.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		id := scopes.Who(r)
		v := viewmodel.Viewer{UserID: id.UserID} // a page's first request names no tab
		heads := s.app.Heads()
		now := time.Now()
		page := views.Page{
			Boot: views.Boot(s.store.Boot()),
			Nav: []views.NavLink{
				{Path: "/", Label: "Home", Current: path == "/"},
				{Path: "/settings", Label: "Settings", Current: path == "/settings"},
			},
			Title:   "Home",
			LiveURL: "/live",
			Demo:    s.demo != nil,
			Health:  viewmodel.Health(s.app.Health()),
			URL:     urlScope(r.URL.RawQuery, r.URL.Query()),
			Local: views.LocalScope{Prefix: localPrefix, ValueBytes: s.app.Limits().ValueBytes,
				KeysMax: s.app.Limits().KeysPerOwner},
			Survival: Survival,
			Events:   SurvivalEvents,
		}
		if path == "/settings" {
			page.Title = "Settings"
		}
		presence := s.app.Presence()
		shown := map[store.Scope]store.View{}
		page.Panels = make([]views.Panel, 0, len(viewmodel.PageScopes))
		for _, scope := range viewmodel.PageScopes {
			if scope == store.Tab || scope == store.Client { // they load themselves
				p := heads.Head(scope)
				p.Lazy = true
				page.Panels = append(page.Panels, p)
				continue
			}
			d, err := scopes.Dict(r, scope)
			if err != nil {
				return err
			}
			window := heads.Window(scope, "", viewmodel.InspectorRows)
			window.Latest = views.FeedMax
			view, err := d.View(ctx, window)
			if err != nil {
				return err
			}
			shown[scope] = view
			if scope == store.User {
				page.Name = viewmodel.GreetingName(heads.Named(scope, view, viewmodel.KeyUsername))
				page.NameVersion = view.Version
			}
			p := heads.Panel(scope, view, "", v, now)
			p.Presence = viewmodel.Presence(scope, presence, v)
			page.Panels = append(page.Panels, p)
		}
		page.Activity = viewmodel.RecentActivity(shown, v, now)
		return scopes.Render(w, r, http.StatusOK, views.FullPage(page))
	}
}

// handleVisit loads a lazy panel. The tab's panel counts the page view: the
// visits of the general, user, tab and browser scopes and the page last
// seen, all by this tab (whose name it learns here; a duplicated tab's rows
// were copied as it was identified). The client's panel counts its one
// visit.
func (s *Server) handleVisit(w http.ResponseWriter, r *http.Request) error {
	scope := store.Scope(chi.URLParam(r, "scope"))
	if scope != store.Tab && scope != store.Client {
		return notFound("scope %q has no lazy panel", scope)
	}
	ctx := r.Context()
	d, err := scopes.Dict(r, scope)
	if err != nil {
		return err
	}
	if scope == store.Client {
		if _, err := d.Increment(ctx, viewmodel.KeyVisits); err != nil {
			return err
		}
		return s.renderVisit(w, r, scope, d, nil, "")
	}
	// One write for the four stored counts, as one page view.
	id := scopes.Who(r)
	page, err := store.Marshal(pagePath(r))
	if err != nil {
		return err
	}
	counted, err := s.store.Apply(ctx, id.Origin(),
		store.Mutation{Owner: store.GeneralOwner, Key: viewmodel.KeyVisits, Increment: true},
		store.Mutation{Owner: store.UserOwner(id.UserID), Key: viewmodel.KeyVisits, Increment: true},
		store.Mutation{Owner: store.UserOwner(id.UserID), Key: viewmodel.KeyLastVisited, Value: page},
		store.Mutation{Owner: store.TabOwner(id.UserID, id.TabID), Key: viewmodel.KeyVisits, Increment: true},
	)
	if store.FaultOf(err) != nil {
		// Reads still work: the panel, uncounted, says why.
		return s.renderVisit(w, r, scope, d, nil, "This visit was not counted: "+viewmodel.FaultReason(err)+".")
	}
	if err != nil {
		return err
	}
	id.Tab = counted[0].Origin.Tab // numbered now, if the storage could not before
	// The browser scope's counter also re-issues the cookie, which keeps
	// it alive for another year.
	browserCount, err := scopes.Browser(r).Increment(ctx, viewmodel.KeyVisits)
	if err != nil {
		return err
	}
	return s.renderVisit(w, r, scope, d, &visitCounts{stored: counted, browser: browserCount}, "")
}

// visitCounts are what a tab's panel load counted.
type visitCounts struct {
	stored  []store.Entry // general visits, user visits, last page, tab visits
	browser store.Entry
}

// renderVisit answers a lazy panel's load: the panel, and for a tab's the
// tab's name and the changes its page view made (the counters of the other
// scopes, the page last seen, their feed items); note says why a visit was
// not counted.
func (s *Server) renderVisit(w http.ResponseWriter, r *http.Request, scope store.Scope, d store.Dict, counts *visitCounts, note string) error {
	ctx := r.Context()
	heads := s.app.Heads()
	v := scopes.Who(r).Viewer
	now := time.Now()
	view, err := d.View(ctx, heads.Window(scope, "", viewmodel.InspectorRows))
	if err != nil {
		return err
	}
	visit := views.Visit{Panel: heads.Panel(scope, view, "", v, now)}
	visit.Panel.Presence = viewmodel.Presence(scope, nil, v)
	visit.Panel.VisitsNote = note
	if note != "" && v.Tab > 0 {
		visit.TabName = viewmodel.TabName(v.Tab)
	}
	if counts != nil {
		visit.TabName = viewmodel.TabName(v.Tab)
		keys := map[store.Scope]store.View{scope: view} // each scope counted once
		for _, c := range []struct {
			scope store.Scope
			e     store.Entry
		}{
			{store.General, counts.stored[0]}, {store.User, counts.stored[1]}, {store.User, counts.stored[2]},
			{store.Browser, counts.browser}, {store.Tab, counts.stored[3]},
		} {
			counted, ok := keys[c.scope]
			if !ok {
				od, err := scopes.Dict(r, c.scope)
				if err != nil {
					return err
				}
				if counted, err = od.View(ctx, store.Window{}); err != nil {
					return err
				}
				keys[c.scope] = counted
			}
			visit.Changes = append(visit.Changes, heads.Change(viewmodel.SetBy(c.scope, c.e), counted.Keys, counted.Version, v, now))
		}
	}
	return scopes.Render(w, r, http.StatusOK, views.VisitAnswer(visit))
}

// pagePath is the page a tab's panel load comes from (htmx names it in
// HX-Current-URL): one of the app's pages, else "/".
func pagePath(r *http.Request) string {
	if u, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil && u.Path == "/settings" {
		return "/settings"
	}
	return "/"
}
