// Package nginx runs the app's nginx configuration (scopes.conf, which the
// docs link), as it is written, in front of the app's instances on
// loopback: the e2e suite tests it and `go tool task cluster` (cmd/cluster)
// runs it. That file is the one place the configuration lives.
package nginx

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/storagescopes/app/internal/proctest"
)

// scopes is the configuration, as an operator copies it; scopesTLS the
// one that terminates TLS.
var (
	//go:embed scopes.conf
	scopes string
	//go:embed scopes-tls.conf
	scopesTLS string
)

// TLS names the certificate files nginx serves HTTPS with.
type TLS struct{ CertFile, KeyFile string }

var upstream = regexp.MustCompile(`(?m)^([ \t]*)server 127\.0\.0\.1:\d+;\n`)

// Config returns a whole nginx.conf that runs scopes.conf (with tls,
// scopes-tls.conf) in front of the instances at upstreams (host:port),
// listening on listen (host:port), with nginx's own files in dir.
func Config(dir, listen string, upstreams []string, tls *TLS) (string, error) {
	conf, port := scopes, "8080"
	if tls != nil {
		conf, port = scopesTLS, "8443 ssl http2"
		for _, f := range []struct{ placeholder, file string }{
			{"/etc/ssl/scopes/fullchain.pem", tls.CertFile}, {"/etc/ssl/scopes/privkey.pem", tls.KeyFile},
		} {
			if !strings.Contains(conf, f.placeholder) {
				return "", fmt.Errorf("scopes-tls.conf has no %s", f.placeholder)
			}
			conf = strings.Replace(conf, f.placeholder, f.file, 1)
		}
	}
	servers := upstream.FindAllStringSubmatchIndex(conf, -1)
	if len(servers) == 0 {
		return "", errors.New("scopes.conf has no `server 127.0.0.1:port;` upstream lines")
	}
	indent := conf[servers[0][2]:servers[0][3]]
	var lines strings.Builder
	for _, u := range upstreams {
		fmt.Fprintf(&lines, "%sserver %s;\n", indent, u)
	}
	conf = conf[:servers[0][0]] + lines.String() + conf[servers[len(servers)-1][1]:]
	if !strings.Contains(conf, "listen "+port+";") {
		return "", fmt.Errorf("the configuration has no `listen %s;`", port)
	}
	suffix := ""
	if tls != nil {
		suffix = " ssl http2"
	}
	conf = strings.Replace(conf, "listen "+port+";", "listen "+listen+suffix+";", 1)
	full := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, conf)
	if os.Geteuid() == 0 {
		full = "user root;\n" + full // its workers may read what root made
	}
	return full, nil
}

// Nginx is one running nginx.
type Nginx struct {
	URL string // http://listen, or https://
	cmd *exec.Cmd
	log *proctest.Log
}

// Start runs nginx with Config in dir and waits until it passes requests
// to the instances (/healthz answers 200). Without nginx it fails with how
// to install it.
func Start(ctx context.Context, dir, listen string, upstreams []string, tls *TLS) (*Nginx, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil, errors.New("nginx not found: install it with `apt-get install -y nginx`")
	}
	conf, err := Config(dir, listen, upstreams, tls)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	scheme := "http://"
	if tls != nil {
		scheme = "https://"
	}
	n := &Nginx{URL: scheme + listen, cmd: exec.Command(bin, "-p", dir, "-c", path), log: &proctest.Log{}}
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers too
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	ready, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := proctest.WaitReady(ready, n.URL); err != nil {
		n.Stop()
		return nil, fmt.Errorf("nginx on %s: %w; it printed:\n%s", listen, err, n.Log())
	}
	return n, nil
}

// Log is what nginx printed.
func (n *Nginx) Log() string { return n.log.String() }

// Stop ends nginx and its workers.
func (n *Nginx) Stop() {
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	n.cmd.Wait()
}
