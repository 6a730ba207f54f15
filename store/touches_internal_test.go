package store

import (
	"testing"
	"time"
)

// A returning cookie whose user has no row yet is told once, not with every
// request; but again after a write that may have made the row, including a
// write that ran while the touch looked (a request's touch runs beside its
// own write), or the row would stay one-shot.
func TestTouchesAskAgainAfterAWriteThatMayHaveMadeTheUser(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	asked := func(tt *touches) bool { due, _ := tt.needed("u", "", now, true); return due }

	var plain touches
	_, w := plain.needed("u", "", now, true)
	plain.record("u", "", now, true, false, w)
	if asked(&plain) {
		t.Error("a reader without a row is asked again with its next request")
	}
	plain.countWrite("u")
	if !asked(&plain) {
		t.Error("after the user's first write the returning cookie is not told again")
	}

	for name, order := range map[string][]string{
		"the write made the row before the touch was recorded": {"wrote", "done"},
		"the touch was recorded before the write made the row": {"done", "wrote"},
	} {
		var tt touches
		_, w := tt.needed("u", "", now, true) // the touch looks: no row yet
		for _, step := range order {
			switch step {
			case "wrote":
				tt.countWrite("u")
			case "done":
				tt.record("u", "", now, true, false, w)
			}
		}
		if !asked(&tt) {
			t.Errorf("%s: the next request is not touched, so the new row stays one-shot", name)
		}
	}
}
