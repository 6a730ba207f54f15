package viewmodel

import (
	"net/http"

	"github.com/storagescopes/app/store"
)

// Fault is everything said of one store fault, in one place: the answer
// to a request it refused, /healthz, the live indicator, a page's notes.
type Fault struct {
	Status     int    // the answer's status
	RetryAfter int    // seconds, when it may have passed (0: not said)
	Message    string // the answer's words
	Reason     string // what it is, in a clause: "the server's disk is full"
	Health     string // /healthz's line while reads still work; "" when they do not (503)
	State      string // the live indicator's data-state
	Indicator  string // what the live indicator says
}

// faults are the store's faults (store.FaultOf), each described once.
var faults = map[error]Fault{
	store.ErrDiskFull: {Status: http.StatusInsufficientStorage,
		Message: "Not saved: the server's disk is full",
		Reason:  "the server's disk is full",
		Health:  "degraded: the disk is full; writes are refused until there is room, reads work",
		State:   "disk-full", Indicator: "Disk full: not saving"},
	store.ErrLocked: {Status: http.StatusServiceUnavailable, RetryAfter: 2,
		Message: "Not saved: another process holds the database's lock; try again in a moment",
		Reason:  "another process holds the database's lock",
		Health:  "degraded: another process holds the database's lock; writes wait for it, reads work",
		State:   "locked", Indicator: "Database locked: not saving"},
	store.ErrNoReplica: {Status: http.StatusServiceUnavailable, RetryAfter: 2,
		Message: "Not confirmed: no replica of the storage confirmed the write, so it may not be kept; try again in a moment",
		Reason:  "no replica of the storage confirmed the write",
		Health:  "degraded: too few replicas of the storage are connected; writes are not confirmed, reads work",
		State:   "no-replica", Indicator: "No replica: not saving"},
	store.ErrUnavailable: {Status: http.StatusServiceUnavailable, RetryAfter: 5,
		Message: "Storage is unavailable; nothing was changed",
		Reason:  "the storage is unavailable",
		State:   "unavailable", Indicator: "Storage unavailable"},
}

// FaultOf describes the fault err is; an error that is no store fault
// reads as the storage unavailable, with a reason that says nothing more.
func FaultOf(err error) Fault {
	if f, ok := faults[store.FaultOf(err)]; ok {
		return f
	}
	f := faults[store.ErrUnavailable]
	f.Reason = "something went wrong"
	return f
}
