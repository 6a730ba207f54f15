// Package migrations holds the numbered SQL migrations of the SQLite schema,
// embedded into the binary and applied at start-up by the store.
package migrations

import "embed"

// FS holds every migration file, named NNNNN_description.sql.
//
//go:embed *.sql
var FS embed.FS
