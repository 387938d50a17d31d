package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Headers of a node-to-node request signed with the cluster secret.
const (
	PeerNodeHeader      = "X-Tandem-Peer-Node"
	PeerTimeHeader      = "X-Tandem-Peer-Time"
	PeerSignatureHeader = "X-Tandem-Peer-Signature"
)

// PeerSkewMax is how far a signed request's time may be from the receiver's clock
// (nodes follow the repository's clock, so theirs agree far better than this).
const PeerSkewMax = 2 * time.Minute

// PeerBodyMax bounds the body of a signed request the receiver reads to check it.
const PeerBodyMax = 4 << 20

// IsPeerRequest reports whether r claims to come from another node.
func IsPeerRequest(r *http.Request) bool { return r.Header.Get(PeerSignatureHeader) != "" }

// ClusterKey signs and checks node-to-node requests: HMAC-SHA256 over the method, the
// path with its query, the time and the body's SHA-256.
type ClusterKey struct {
	secret []byte
	node   string
	now    func() time.Time
}

// NewClusterKey returns the key of node over secret.
func NewClusterKey(secret []byte, node string, now func() time.Time) *ClusterKey {
	if now == nil {
		now = time.Now
	}
	return &ClusterKey{secret: secret, node: node, now: now}
}

func (k *ClusterKey) mac(method, uri, at string, body []byte) string {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, k.secret)
	fmt.Fprintf(m, "%s\n%s\n%s\n%x", method, uri, at, sum)
	return hex.EncodeToString(m.Sum(nil))
}

// Sign signs req, whose body (nil for none) is given.
func (k *ClusterKey) Sign(req *http.Request, body []byte) {
	at := strconv.FormatInt(k.now().Unix(), 10)
	req.Header.Set(PeerNodeHeader, k.node)
	req.Header.Set(PeerTimeHeader, at)
	req.Header.Set(PeerSignatureHeader, k.mac(req.Method, req.URL.RequestURI(), at, body))
}

// Verify checks r's signature; it reads r's body and puts it back. It returns the
// node that signed it.
func (k *ClusterKey) Verify(r *http.Request) (string, error) {
	at := r.Header.Get(PeerTimeHeader)
	sec, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return "", errors.New("no signing time")
	}
	if d := k.now().Sub(time.Unix(sec, 0)); d > PeerSkewMax || d < -PeerSkewMax {
		return "", fmt.Errorf("signed %s from this node's clock (at most %s)", d.Round(time.Second), PeerSkewMax)
	}
	var body []byte
	if r.Body != nil {
		if body, err = io.ReadAll(io.LimitReader(r.Body, PeerBodyMax+1)); err != nil {
			return "", fmt.Errorf("read body: %w", err)
		}
		if len(body) > PeerBodyMax {
			return "", fmt.Errorf("body over %d bytes", PeerBodyMax)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	want := k.mac(r.Method, r.URL.RequestURI(), at, body)
	if !hmac.Equal([]byte(want), []byte(r.Header.Get(PeerSignatureHeader))) {
		return "", errors.New("the signature does not match this cluster's secret")
	}
	return r.Header.Get(PeerNodeHeader), nil
}

// Settings keys of the cluster secret.
const (
	settingSecret      = "auth.cluster_secret"
	settingFingerprint = "auth.cluster_secret_fingerprint"
	settingBootstrap   = "auth.bootstrap"
)

// Fingerprint names a cluster secret without revealing it.
func Fingerprint(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("tandem cluster secret fingerprint"))
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// ErrOtherCluster: the repository records the fingerprint of another cluster secret.
var ErrOtherCluster = errors.New("the repository belongs to a cluster with another cluster secret")

// ClusterSecret returns the secret this node signs and checks node-to-node calls
// with. A configured secret must match the fingerprint the repository records (the
// first node records it). Without one, the first node generates a secret and keeps it
// in the repository, which every node of the cluster reads: nodes that share a
// repository trust each other already.
func ClusterSecret(ctx context.Context, st store.Auth, configured []byte, now time.Time) ([]byte, error) {
	secret := configured
	if len(secret) == 0 {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("make cluster secret: %w", err)
		}
		v, err := st.SettingInit(ctx, settingSecret, hex.EncodeToString(b), now)
		if err != nil {
			return nil, err
		}
		if secret, err = hex.DecodeString(v); err != nil {
			return nil, fmt.Errorf("read cluster secret: %w", err)
		}
	}
	fp, err := st.SettingInit(ctx, settingFingerprint, Fingerprint(secret), now)
	if err != nil {
		return nil, err
	}
	if fp != Fingerprint(secret) {
		return nil, fmt.Errorf("cluster secret with fingerprint %s: the repository records %s: %w", Fingerprint(secret), fp, ErrOtherCluster)
	}
	return secret, nil
}
