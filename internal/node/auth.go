package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
)

// startAuth reads (or, first in the repository, makes) the cluster secret this node
// signs and checks node-to-node calls with, builds the API's authenticator, and, on the
// first start on a repository, writes the bootstrap admin token into the data directory.
func (n *Node) startAuth(ctx context.Context) error {
	secret, err := auth.ClusterSecret(ctx, n.store, []byte(n.cfg.ClusterSecret), n.clock.Now())
	if err != nil {
		return fmt.Errorf("cluster secret: %w", err)
	}
	n.peers.SetKey(auth.NewClusterKey(secret, n.cfg.NodeID, n.clock.Now))
	n.authn = auth.New(auth.Params{Store: n.store, Log: n.log.With("component", "auth"), Now: n.clock.Now, Peers: n.peers,
		NoAuth: n.cfg.InsecureNoAuth})
	if os.Geteuid() == 0 && n.cfg.RunAs == "" && n.cfg.Capacity > 0 {
		n.log.Warn("this server runs as root and run_as is not set: command jobs run as root too (set run_as to an unprivileged user)")
	}
	if n.cfg.InsecureNoAuth {
		n.log.Warn("authentication is off (--insecure-no-auth): every request to " + n.cfg.Listen + " may do everything")
	}
	if err := n.loadSecretKey(ctx); err != nil {
		return err
	}
	path, err := auth.Bootstrap(ctx, n.store, n.cfg.DataDir, store.Audit{By: "node " + n.cfg.NodeID + " (first start)",
		Node: n.cfg.NodeID, Now: n.clock.Now()})
	if err != nil {
		return fmt.Errorf("bootstrap admin token: %w", err)
	}
	if path != "" {
		n.bootstrapPath = path
		n.log.Info("bootstrap admin token written (owner-only); the CLI on this host finds it", "path", path)
	}
	return nil
}

// Authenticator judges the API's requests (api.Server uses it).
func (n *Node) Authenticator() *auth.Authenticator { return n.authn }

// BootstrapTokenPath is where this node's start wrote the bootstrap admin token, or "".
func (n *Node) BootstrapTokenPath() string { return n.bootstrapPath }

// loadSecretKey reads the key secrets are encrypted with: secret_key_file, else the data
// directory's, which the first node of a repository generates. A node whose key is not
// the one the repository records resolves no secrets, and says so.
func (n *Node) loadSecretKey(ctx context.Context) error {
	path := n.cfg.SecretKeyFile
	if path == "" {
		if _, err := os.Stat(filepath.Join(n.cfg.DataDir, auth.SecretKeyFile)); errors.Is(err, fs.ErrNotExist) {
			if _, err := n.store.SettingGet(ctx, "auth.secret_key_fingerprint"); err == nil {
				n.log.Warn("this node has no secret key: jobs that use secrets fail here; give it the cluster's key in secret_key_file")
				return nil
			}
		}
	}
	key, err := auth.LoadSecretKey(path, n.cfg.DataDir)
	if err != nil {
		return err
	}
	ok, err := auth.CheckSecretKey(ctx, n.store, key, n.clock.Now())
	if err != nil {
		return fmt.Errorf("secret key: %w", err)
	}
	if !ok {
		n.log.Warn("this node's secret key is not the cluster's: jobs that use secrets fail here; give it the cluster's key in secret_key_file")
		return nil
	}
	if n.sealer, err = auth.NewSealer(key); err != nil {
		return err
	}
	return nil
}

// secret returns a secret's value, decrypted on this node.
func (n *Node) secret(ctx context.Context, name string) (string, error) {
	if n.sealer == nil {
		return "", fmt.Errorf("secret %s: %w", name, auth.ErrNoSecretKey)
	}
	s, err := n.store.SecretGet(ctx, name)
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	v, err := n.sealer.Open(name, s.Ciphertext)
	if err == nil && n.cfg.SecretSeen != nil {
		n.cfg.SecretSeen(v)
	}
	return v, err
}

// Sealer encrypts the secrets the API is given (nil: this node has not the key).
func (n *Node) Sealer() *auth.Sealer { return n.sealer }
