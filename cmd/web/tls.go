package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// HTTPS: from certificate files (-tls-cert, -tls-key), read again when
// they are renewed, or from an ACME CA (-domain), kept beside the database;
// behind a proxy, -trusted-proxies says whose X-Forwarded-Proto to believe.

// httpsConfig is what the HTTPS flags say.
type httpsConfig struct {
	certFile, keyFile string
	domains           []string
	acmeDirectory     string // "": Let's Encrypt
	httpAddr          string // with -domain: ACME's challenges and a redirect to HTTPS
	proxies           []netip.Prefix
	hsts              time.Duration // negative: off
}

// on says the app itself serves HTTPS.
func (h httpsConfig) on() bool { return h.certFile != "" || len(h.domains) > 0 }

// httpsFlags declares the HTTPS flags on fs; parse checks them once fs is
// parsed, and sets the address's default for -domain (:443).
func httpsFlags(fs *flag.FlagSet, env func(name, def string) string) (parse func(c *config) error) {
	var domains, proxies, hsts string
	var h httpsConfig
	fs.StringVar(&h.certFile, "tls-cert", env("TLS_CERT", ""), "serve HTTPS with this certificate file (PEM, the chain after it), read again when it changes (TLS_CERT)")
	fs.StringVar(&h.keyFile, "tls-key", env("TLS_KEY", ""), "the -tls-cert's private key file (PEM) (TLS_KEY)")
	fs.StringVar(&domains, "domain", env("DOMAIN", ""), "serve HTTPS for these names (comma-separated), with certificates got and renewed over ACME, kept beside the database; -addr defaults to :443 (DOMAIN)")
	fs.StringVar(&h.acmeDirectory, "acme-directory", env("ACME_DIRECTORY", ""), "with -domain: the ACME CA's directory URL (default Let's Encrypt's) (ACME_DIRECTORY)")
	fs.StringVar(&h.httpAddr, "http-addr", env("HTTP_ADDR", ":80"), "with -domain: plain HTTP here answers ACME's challenges and redirects the rest to HTTPS; off turns it off (HTTP_ADDR)")
	fs.StringVar(&proxies, "trusted-proxies", env("TRUSTED_PROXIES", ""), "believe X-Forwarded-Proto and X-Forwarded-For only from these peers, CIDR[,CIDR…], e.g. 127.0.0.1/32 (TRUSTED_PROXIES)")
	fs.StringVar(&hsts, "hsts", env("HSTS", "8760h"), "over HTTPS, tell browsers to keep to it this long (Strict-Transport-Security; not on a loopback host); 0 turns it off (HSTS)")
	return func(c *config) error {
		if domains != "" {
			for _, d := range strings.Split(domains, ",") {
				if d = strings.TrimSpace(d); d != "" {
					h.domains = append(h.domains, d)
				}
			}
		}
		switch {
		case len(h.domains) > 0 && (h.certFile != "" || h.keyFile != ""):
			return errors.New("-domain gets its certificates itself (ACME); -tls-cert and -tls-key serve yours: give one or the other")
		case (h.certFile == "") != (h.keyFile == ""):
			return errors.New("-tls-cert and -tls-key go together: the certificate and its private key")
		case h.acmeDirectory != "" && len(h.domains) == 0:
			return errors.New("-acme-directory goes with -domain")
		}
		for _, d := range h.domains {
			if !strings.Contains(d, ".") || strings.ContainsAny(d, "/: ") {
				return fmt.Errorf("-domain %q: give host names with a dot, such as example.org", d)
			}
		}
		if len(h.domains) > 0 {
			set := false
			fs.Visit(func(f *flag.Flag) { set = set || f.Name == "addr" })
			if !set && env("ADDR", "") == "" {
				c.addr = ":443"
			}
		}
		if h.httpAddr == "off" {
			h.httpAddr = ""
		}
		for _, p := range strings.Split(proxies, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			prefix, err := netip.ParsePrefix(p)
			if err != nil {
				a, aerr := netip.ParseAddr(p)
				if aerr != nil {
					return fmt.Errorf("-trusted-proxies: %q is not an address or a CIDR such as 10.0.0.0/8", p)
				}
				prefix = netip.PrefixFrom(a, a.BitLen())
			}
			h.proxies = append(h.proxies, prefix.Masked())
		}
		switch hsts {
		case "0", "off":
			h.hsts = -1
		default:
			d, err := time.ParseDuration(hsts)
			if err != nil || d < 0 {
				return fmt.Errorf("-hsts: %q is not a duration such as 8760h, or 0", hsts)
			}
			h.hsts = d
			if d == 0 {
				h.hsts = -1 // 0s: off, like 0
			}
		}
		c.https = h
		return nil
	}
}

// tlsConfig is how the app serves HTTPS, and with -domain the plain HTTP
// handler for ACME's challenges and the redirect to httpsAddr (nil
// otherwise).
func (h httpsConfig) tlsConfig(dbPath, httpsAddr string) (*tls.Config, http.Handler, error) {
	if h.certFile != "" {
		files := &certFiles{cert: h.certFile, key: h.keyFile}
		if _, err := files.get(nil); err != nil {
			return nil, nil, err
		}
		return &tls.Config{GetCertificate: files.get, MinVersion: tls.VersionTLS12}, nil, nil
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(h.domains...),
		Cache:      autocert.DirCache(filepath.Join(filepath.Dir(dbPath), "acme")),
	}
	if h.acmeDirectory != "" {
		m.Client = &acme.Client{DirectoryURL: h.acmeDirectory}
	}
	cfg := m.TLSConfig()
	cfg.MinVersion = tls.VersionTLS12
	return cfg, m.HTTPHandler(redirectToHTTPS(httpsAddr)), nil
}

// redirectToHTTPS sends a plain HTTP request to the same URL over HTTPS,
// on the port the app serves it (httpsAddr's).
func redirectToHTTPS(httpsAddr string) http.Handler {
	_, port, _ := net.SplitHostPort(httpsAddr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if port != "443" && port != "" {
			host = net.JoinHostPort(host, port)
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// certFiles serves a certificate from its files, and reads them again when
// either changes (a renewal), checked at most once a second.
type certFiles struct {
	cert, key string

	mu      sync.Mutex
	current *tls.Certificate
	stamp   string // the files' sizes and times when read
	checked time.Time
}

func (f *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current != nil && time.Since(f.checked) < time.Second {
		return f.current, nil
	}
	f.checked = time.Now()
	stamp, err := stampOf(f.cert, f.key)
	if err != nil {
		if f.current != nil {
			return f.current, nil // a file moved away for a moment by a renewal
		}
		return nil, fmt.Errorf("-tls-cert: %w", err)
	}
	if f.current != nil && stamp == f.stamp {
		return f.current, nil
	}
	c, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		if f.current != nil {
			return f.current, nil // a renewal half written: the last one serves until it is whole
		}
		return nil, fmt.Errorf("-tls-cert, -tls-key: %w", err)
	}
	f.current, f.stamp = &c, stamp
	return f.current, nil
}

// stampOf says when files last changed, and how large they are.
func stampOf(files ...string) (string, error) {
	var b strings.Builder
	for _, name := range files {
		fi, err := os.Stat(name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

// serveChallenges serves ACME's HTTP challenges and the redirect on addr.
func serveChallenges(addr string, h http.Handler, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-http-addr: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: defaultTimeouts.readHeader, IdleTimeout: defaultTimeouts.idle,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("plain HTTP: ACME challenges, and redirects to HTTPS", "at", "http://"+ln.Addr().String())
	go srv.Serve(ln)
	return srv, nil
}
