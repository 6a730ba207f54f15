// Package static holds the front-end files, embedded into the binary: the
// vendored htmx 4.0.1 (from the htmx.org npm package, with its licence), the
// page script and the stylesheet. There is no build step and no CDN.
package static

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

//go:embed *.js *.css *.svg *.LICENSE
var files embed.FS

// asset is one file as it is served: its bytes, gzip-compressed once (when
// that makes them smaller), and a short hash of its content, so that its
// URL changes whenever its content does and it can be cached forever.
type asset struct {
	version     string
	contentType string
	plain, gz   []byte
}

// assets are the files, read, hashed and compressed once, at start-up.
var assets = func() map[string]*asset {
	m := map[string]*asset{}
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		b, _ := files.ReadFile(e.Name())
		sum := sha256.Sum256(b)
		a := &asset{version: hex.EncodeToString(sum[:6]), plain: b,
			contentType: mime.TypeByExtension(path.Ext(e.Name()))}
		if a.contentType == "" {
			a.contentType = "text/plain; charset=utf-8"
		}
		var gz bytes.Buffer
		w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		w.Write(b)
		if w.Close() == nil && gz.Len() < len(b) {
			a.gz = gz.Bytes()
		}
		m[e.Name()] = a
	}
	return m
}()

// Path returns the URL of a static file, with its content hash.
func Path(name string) string {
	if a, ok := assets[name]; ok {
		return "/static/" + name + "?v=" + a.version
	}
	return "/static/" + name
}

// Handler serves the files under /static/, gzip-compressed for a client
// that accepts it. A request that names the current hash is cached for a
// year; any other for a minute.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[strings.TrimPrefix(r.URL.Path, "/static/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		if r.URL.Query().Get("v") == a.version {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "public, max-age=60")
		}
		h.Set("Content-Type", a.contentType)
		h.Add("Vary", "Accept-Encoding")
		body, tag := a.plain, `"`+a.version+`"`
		if a.gz != nil && AcceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			body, tag = a.gz, `"`+a.version+`-gzip"`
		}
		h.Set("ETag", tag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

// AcceptsGzip reports whether an Accept-Encoding header takes gzip: it
// names gzip, or "*", with a quality above zero (RFC 9110, 12.5.3).
func AcceptsGzip(header string) bool {
	star := false
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		q := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				q = f
			}
		}
		if coding == "*" {
			star = q > 0
			continue
		}
		return q > 0
	}
	return star
}
