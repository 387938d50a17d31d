package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/peer"
	"github.com/tandemhq/tandem/internal/testutil"
)

// writePair writes a self-signed certificate with the serial given, and its key.
func writePair(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	// Written beside and renamed into place, as rotation tools do.
	for f, b := range map[string][]byte{certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})} {
		if err := os.WriteFile(f+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f+".new", f); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *certs) serial() int64 {
	leaf, err := x509.ParseCertificate(c.cur.Load().Certificate[0])
	if err != nil {
		return -1
	}
	return leaf.SerialNumber.Int64()
}

// The watcher starts from the files as they were when the certificate was first
// loaded: a rotation made before its goroutine runs (a busy node starting) is still
// seen. Rotated within the same clock tick, the pair is told apart by its inodes.
func TestWatchTLSSeesARotationDuringStart(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePair(t, cert, key, 1)
	n := &Node{cfg: config.Config{TLSCert: cert, TLSKey: key}, log: slog.New(slog.DiscardHandler), peers: peer.New()}
	if _, err := n.startTLS(); err != nil {
		t.Fatal(err)
	}
	writePair(t, cert, key, 2) // before the watcher has looked
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.watchTLS(ctx, 5*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	testutil.Wait(t, 5*time.Second, "the rotated certificate", func() bool { return n.certs.serial() == 2 })
}
