package store

import (
	"context"
	"database/sql"
	"time"
)

// checkpointEvery is how often the background checkpointer copies the WAL
// back into the database file.
const checkpointEvery = 500 * time.Millisecond

// checkpointLoop runs passive checkpoints on a connection of its own, so
// that the writer never stalls a commit to do one: SQLite's automatic
// checkpoint runs inside the commit that crosses the threshold, which is
// then the slowest write of all. A passive checkpoint waits for nobody and
// nobody waits for it.
func (s *SQLite) checkpointLoop(db *sql.DB) {
	defer db.Close()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
				s.log.Warn("checkpoint", "error", err)
			}
			cancel()
		}
	}
}
