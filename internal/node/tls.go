package node

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync/atomic"
)

// certs holds the API's certificate, replaced on Reload (SIGHUP) without a restart.
type certs struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

func (c *certs) load() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls_cert, tls_key: %w", err)
	}
	c.cur.Store(&cert)
	return nil
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
func (n *Node) ReloadTLS() error {
	if n.certs == nil {
		return nil
	}
	if err := n.certs.load(); err != nil {
		n.log.Error("TLS certificate not reloaded; the previous one stays in use", "err", err)
		return err
	}
	n.log.Info("TLS certificate reloaded", "cert", n.cfg.TLSCert)
	return nil
}

// Scheme is how clients reach this node's API: https with tls_cert, else http.
func (n *Node) Scheme() string {
	if n.cfg.TLSCert != "" {
		return "https"
	}
	return "http"
}
