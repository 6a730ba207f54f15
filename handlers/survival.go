package handlers

import "github.com/storagescopes/app/views"

// What survives what: one row per scope, one cell per event, true for the
// default flags. The page draws it, the README carries a copy (a test holds
// the two equal), and the browser suite performs each event and checks every
// cell (e2e/survival_test.go).

// The events, as a person does them: the value set in one tab, the event,
// then the page loaded (or the new, duplicated or other browser's tab
// opened) and the scope's control read.
const (
	EventReload          = "reload"
	EventNewTab          = "new-tab"
	EventDuplicateTab    = "duplicate-tab"
	EventOtherBrowser    = "other-browser"
	EventRestart         = "restart"
	EventDatabaseDeleted = "database-deleted"
	EventCookieDeleted   = "cookie-deleted"
)

// SurvivalEvents are the table's columns, in order.
var SurvivalEvents = []string{EventReload, EventNewTab, EventDuplicateTab, EventOtherBrowser, EventRestart,
	EventDatabaseDeleted, EventCookieDeleted}

// yes and no are one cell each.
func yes(event, why string) views.SurvivalCell {
	return views.SurvivalCell{Event: event, Survives: true, Why: why}
}
func no(event, why string) views.SurvivalCell { return views.SurvivalCell{Event: event, Why: why} }

// Survival is the table, a row per scope in the page's order.
var Survival = []views.SurvivalRow{
	{Scope: "general", Cells: []views.SurvivalCell{
		yes(EventReload, "kept in the database"), yes(EventNewTab, "shared by everyone"),
		yes(EventDuplicateTab, "shared by everyone"), yes(EventOtherBrowser, "shared by everyone"),
		yes(EventRestart, "kept in the database"), no(EventDatabaseDeleted, "its rows were in it"),
		yes(EventCookieDeleted, "needs no cookie"),
	}},
	{Scope: "user", Cells: []views.SurvivalCell{
		yes(EventReload, "kept in the database"), yes(EventNewTab, "same cookie"),
		yes(EventDuplicateTab, "same cookie"), no(EventOtherBrowser, "another cookie, another user"),
		yes(EventRestart, "kept in the database"), no(EventDatabaseDeleted, "its rows were in it"),
		no(EventCookieDeleted, "the cookie was who you are"),
	}},
	{Scope: "browser", Cells: []views.SurvivalCell{
		yes(EventReload, "inside the cookie"), yes(EventNewTab, "same cookie"),
		yes(EventDuplicateTab, "same cookie"), no(EventOtherBrowser, "another cookie"),
		yes(EventRestart, "inside the cookie; its key is kept in the database"),
		no(EventDatabaseDeleted, "the generated secret went with it, so the cookie no longer opens (with -secret it would)"),
		no(EventCookieDeleted, "it was the cookie"),
	}},
	{Scope: "tab", Cells: []views.SurvivalCell{
		yes(EventReload, "the tab id stays in sessionStorage"), no(EventNewTab, "a new tab, a new id"),
		yes(EventDuplicateTab, "the copy starts with a copy"), no(EventOtherBrowser, "another tab"),
		yes(EventRestart, "kept in the database"), no(EventDatabaseDeleted, "its rows were in it"),
		no(EventCookieDeleted, "its rows belong to the cookie's user"),
	}},
	{Scope: "client", Cells: []views.SurvivalCell{
		no(EventReload, "one page load only"), no(EventNewTab, "one page load only"),
		no(EventDuplicateTab, "one page load only"), no(EventOtherBrowser, "one page load only"),
		no(EventRestart, "in the server's memory"), no(EventDatabaseDeleted, "one page load only"),
		no(EventCookieDeleted, "one page load only"),
	}},
	{Scope: "url", Cells: []views.SurvivalCell{
		yes(EventReload, "in the address"), no(EventNewTab, "a new tab at / has no query"),
		yes(EventDuplicateTab, "the copy has the same address"), yes(EventOtherBrowser, "the link carries it"),
		yes(EventRestart, "the server never kept it"), yes(EventDatabaseDeleted, "the server never kept it"),
		yes(EventCookieDeleted, "in the address"),
	}},
	{Scope: "local", Cells: []views.SurvivalCell{
		yes(EventReload, "in this browser's localStorage"), yes(EventNewTab, "shared by the browser's tabs"),
		yes(EventDuplicateTab, "shared by the browser's tabs"), no(EventOtherBrowser, "another browser's storage"),
		yes(EventRestart, "never on the server"), yes(EventDatabaseDeleted, "never on the server"),
		yes(EventCookieDeleted, "not a cookie"),
	}},
}

// The url scope's bound and its one control's key; the local scope's
// prefix in localStorage.
const (
	urlMax      = 2 << 10
	urlLinkData = "link_data"
	localPrefix = "scopes:"
)

// urlScope is the url scope as the page's address holds it: empty, and
// why, when the query is over its bound.
func urlScope(rawQuery string, query map[string][]string) views.URLScope {
	u := views.URLScope{Max: urlMax}
	if len(rawQuery) > urlMax {
		u.Note = "This link's query is longer than 2 KiB, the url scope's bound: it is drawn empty."
		return u
	}
	if v := query[urlLinkData]; len(v) > 0 {
		u.LinkData = v[0]
	}
	return u
}
