package views

import (
	"strconv"

	"github.com/storagescopes/app/static"
)

// Asset returns the cache-busting URL of a static file.
func Asset(name string) string { return static.Path(name) }

func fmtInt(n int64) string { return strconv.FormatInt(n, 10) }
