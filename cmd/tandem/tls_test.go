package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/testutil"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tandem test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a certificate for 127.0.0.1 with the serial given, and its key.
func (ca *testCA) issue(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TLS with a test CA: the CLI trusts it with --ca (and refuses the server without it),
// the nodes call each other over HTTPS (a forwarded operator action), and SIGHUP makes a
// node serve a new certificate without a restart.
func TestTLSWithATestCA(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.pem, 0o600)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, certFile, keyFile, 100)
	db := filepath.Join(dir, "shared.db")
	tlsArgs := []string{"--db", db, "--tls-cert", certFile, "--tls-key", keyFile, "--tls-ca", caFile}
	a := startServer(t, filepath.Join(dir, "a"), append(tlsArgs, "--node-id", "a")...)
	if !strings.HasPrefix(a.addr, "https://") {
		t.Fatalf("a serves on %s", a.addr)
	}
	b := startServer(t, filepath.Join(dir, "b"), append(tlsArgs, "--node-id", "b", "--priority", "1")...)
	if out, err := tandemErr(a, "status"); err == nil || !strings.Contains(out, "certificate") {
		t.Fatalf("status without --ca: %v %s", err, out)
	}
	testutil.Wait(t, 30*time.Second, "b to stand by", func() bool {
		out, err := tandemErr(a, "status", "--ca", caFile)
		return err == nil && strings.Contains(out, "b ") && strings.Contains(out, "standby")
	})
	// Forwarded from a to b over HTTPS, signed with the cluster secret.
	if out, err := tandemErr(a, "node", "standby", "b", "--ca", caFile); err != nil || !strings.Contains(out, "held") {
		t.Fatalf("node standby b via a: %v %s", err, out)
	}
	_ = b
	serial := func() int64 {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(a.addr, "https://"), &tls.Config{RootCAs: pool(ca)})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 100 {
		t.Fatalf("serial %d", s)
	}
	ca.issue(t, certFile, keyFile, 101)
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.Wait(t, 10*time.Second, "the new certificate", func() bool { return serial() == 101 })
}

func pool(ca *testCA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}
