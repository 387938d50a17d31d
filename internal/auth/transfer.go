package auth

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"fmt"
)

// A secret synced to a disaster-recovery site crosses in a transfer: opened with the
// source's key, then sealed with HPKE (RFC 9180: X25519, HKDF-SHA256, AES-256-GCM) to
// the site's transfer key, bound to its name. Only the site can open it; it seals the
// value again with its own secret key to store it. The transfer key is derived from a
// cluster's secret key, so every node that has the key has the same one.

// TransferKeySize is the length of a transfer key (an X25519 public key).
const TransferKeySize = 32

var (
	transferKEM  = hpke.DHKEM(ecdh.X25519())
	transferKDF  = hpke.HKDFSHA256()
	transferAEAD = hpke.AES256GCM()
)

// transferInfo binds a transfer to what it carries.
func transferInfo(name string) []byte { return []byte("tandem sitesync secret " + name) }

// transferPair derives the transfer key pair from a secret key.
func transferPair(key []byte) (hpke.PrivateKey, error) {
	ikm, err := hkdf.Key(sha256.New, key, nil, "tandem sitesync transfer key", 32)
	if err != nil {
		return nil, err
	}
	return transferKEM.DeriveKeyPair(ikm)
}

// TransferKey is the public key this cluster receives synced secrets with.
func (s *Sealer) TransferKey() []byte { return s.transfer.PublicKey().Bytes() }

// SealTransfer seals a secret's value for the site whose transfer key is pub.
func SealTransfer(pub []byte, name, value string) ([]byte, error) {
	pk, err := transferKEM.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("the DR site's transfer key: %w", err)
	}
	return hpke.Seal(pk, transferKDF, transferAEAD, transferInfo(name), []byte(value))
}

// OpenTransfer opens what SealTransfer sealed for this cluster's transfer key.
func (s *Sealer) OpenTransfer(name string, ct []byte) (string, error) {
	b, err := hpke.Open(s.transfer, transferKDF, transferAEAD, transferInfo(name), ct)
	if err != nil {
		return "", fmt.Errorf("secret %s: cannot open its transfer with this site's key (was it sealed for another site's?): %w", name, err)
	}
	return string(b), nil
}
