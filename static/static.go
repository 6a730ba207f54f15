// Package static holds the front-end files, embedded into the binary: the
// vendored htmx 4.0.1 (from the htmx.org npm package, with its licence), the
// page script and the stylesheet. There is no build step and no CDN.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed *.js *.css *.svg *.LICENSE
var files embed.FS

// versions holds a short content hash per file, computed once, so that a
// file's URL changes whenever its content does and it can be cached forever.
var versions = func() map[string]string {
	m := map[string]string{}
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		b, _ := files.ReadFile(e.Name())
		sum := sha256.Sum256(b)
		m[e.Name()] = hex.EncodeToString(sum[:6])
	}
	return m
}()

// paths holds each file's URL with its hash, made once (a page names four).
var paths = func() map[string]string {
	m := map[string]string{}
	for name, v := range versions {
		m[name] = "/static/" + name + "?v=" + v
	}
	return m
}()

// Path returns the URL of a static file, with its content hash.
func Path(name string) string {
	if p, ok := paths[name]; ok {
		return p
	}
	return "/static/" + name
}

// Handler serves the files under /static/. A request that names the current
// hash is cached for a year; any other for a minute.
func Handler() http.Handler {
	fileServer := http.StripPrefix("/static/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		if v, ok := versions[name]; ok && r.URL.Query().Get("v") == v {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=60")
		}
		fileServer.ServeHTTP(w, r)
	})
}
