package live

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/storagescopes/app/store"
)

// go test -bench . ./internal/live: what the hub spends drawing a page's
// fresh view (a join, or a page that fell behind), with every scope of it
// holding 50 keys, as after a restart when every page joins again.
func BenchmarkFreshView(b *testing.B) {
	st, h := mustHub(b)
	ctx := context.Background()
	for _, o := range []store.Owner{store.GeneralOwner, store.UserOwner("u"), store.TabOwner("u", "t")} {
		for i := range 50 {
			if _, err := st.Apply(ctx, store.Origin{API: true},
				store.Mutation{Owner: o, Key: fmt.Sprintf("k%02d", i), Value: json.RawMessage(`"a value of some length"`)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	c := newConn(Page{UserID: "u", TabID: "t", Tab: 1, ClientID: "c"}, time.Minute)
	c.writing = true // nothing is written: only the drawing is measured
	batch := &batch{ctx: ctx, counts: map[store.Owner]store.View{}}
	for b.Loop() {
		h.generalPanels = nil // each page draws its own: the worst case
		h.refresh(batch, c)
	}
}
