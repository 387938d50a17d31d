package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// CertCheckInterval is how often a node looks at its certificate and key files for a
// change (their modification time and size): a rotated pair is served within about this,
// no signal needed.
const CertCheckInterval = time.Second

// certs holds the API's certificate, replaced without a restart when its files change
// or on SIGHUP; a pair that cannot be loaded leaves the previous one in use.
type certs struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
	// started is the files' state read just before the first load: the watcher starts
	// from it, so a change made while the node starts is not missed.
	started    filesState
	startedErr error
}

func (c *certs) load() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls_cert, tls_key: %w", err)
	}
	c.cur.Store(&cert)
	return nil
}

// filesState is what tells a changed certificate or key file: each one's modification
// time, size and inode (a file renamed into place is another inode; os.Stat follows
// symbolic links, so a swapped link counts too).
type filesState [2]struct {
	mod  time.Time
	size int64
	ino  uint64
}

func (c *certs) state() (filesState, error) {
	var st filesState
	for i, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return st, err
		}
		st[i].mod, st[i].size = fi.ModTime(), fi.Size()
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			st[i].ino = sys.Ino
		}
	}
	return st, nil
}

// watchTLS reloads the certificate whenever its files change, until ctx ends. A pair
// that fails to load (a rotation half done, a broken file) is logged and the previous
// certificate kept; the next change is tried again.
func (n *Node) watchTLS(ctx context.Context, every time.Duration) {
	last, lastErr := n.certs.started, n.certs.startedErr
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := n.certs.state()
		if err != nil {
			if lastErr == nil {
				n.log.Error("cannot read the TLS certificate files; the previous certificate stays in use", "err", err)
			}
			lastErr = err
			continue
		}
		if lastErr == nil && st == last {
			continue
		}
		last, lastErr = st, nil
		_ = n.reloadTLS("its files changed")
	}
}

// serverTLS is the API's TLS configuration: Go's default versions and suites, the
// current certificate.
func (c *certs) serverTLS() *tls.Config {
	return &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cur.Load(), nil }}
}

// startTLS loads the certificate and makes calls to other nodes go over HTTPS,
// trusting tls_ca (else the system's roots).
func (n *Node) startTLS() (*tls.Config, error) {
	if n.cfg.TLSCert == "" {
		return nil, nil
	}
	n.certs = &certs{certFile: n.cfg.TLSCert, keyFile: n.cfg.TLSKey}
	n.certs.started, n.certs.startedErr = n.certs.state()
	if err := n.certs.load(); err != nil {
		return nil, err
	}
	var roots *x509.CertPool
	if n.cfg.TLSCA != "" {
		pem, err := os.ReadFile(n.cfg.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("tls_ca: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca %s: no PEM certificate in it", n.cfg.TLSCA)
		}
	}
	n.peers.SetTLS(roots)
	return n.certs.serverTLS(), nil
}

// ReloadTLS reads the certificate and key files again (on SIGHUP); the old certificate
// stays in use if they cannot be read.
func (n *Node) ReloadTLS() error { return n.reloadTLS("SIGHUP") }

func (n *Node) reloadTLS(why string) error {
	if n.certs == nil {
		return nil
	}
	if err := n.certs.load(); err != nil {
		n.log.Error("TLS certificate not reloaded; the previous one stays in use", "on", why, "err", err)
		return err
	}
	n.log.Info("TLS certificate reloaded", "on", why, "cert", n.cfg.TLSCert)
	return nil
}

// Scheme is how clients reach this node's API: https with tls_cert, else http.
func (n *Node) Scheme() string {
	if n.cfg.TLSCert != "" {
		return "https"
	}
	return "http"
}

// startRedirect, with redirect_http, listens there and answers every plain HTTP request
// with a permanent redirect (308: the method and body are kept) to the same host, path
// and query over HTTPS on this node's API port. It serves nothing else.
func (n *Node) startRedirect() error {
	if n.cfg.RedirectHTTP == "" || n.certs == nil {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.RedirectHTTP)
	if err != nil {
		return fmt.Errorf("redirect_http: listen on %s: %w", n.cfg.RedirectHTTP, err)
	}
	_, port, _ := net.SplitHostPort(n.Addr())
	n.redirect = &http.Server{Handler: redirectHandler(port), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(n.log.With("component", "http").Handler(), slog.LevelWarn)}
	n.log.Info("redirecting plain HTTP to HTTPS", "redirect_http", ln.Addr().String(), "to_port", port)
	n.goFn(func() {
		if err := n.redirect.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("HTTP redirect server stopped", "err", err)
		}
	})
	return nil
}

// redirectHandler sends every request to https://HOST:port with its path and query,
// HOST being the one the client asked for.
func redirectHandler(port string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
		if host == "" {
			http.Error(w, "no Host header to redirect to", http.StatusBadRequest)
			return
		}
		u := "https://" + net.JoinHostPort(host, port)
		if port == "443" {
			u = "https://" + host
			if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
				u = "https://[" + host + "]"
			}
		}
		http.Redirect(w, r, u+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}
