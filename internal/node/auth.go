package node

import (
	"context"
	"fmt"
	"os"

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
