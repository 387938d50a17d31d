package node

import (
	"context"
	"net/http"

	"github.com/tandemhq/tandem/internal/console"
	"github.com/tandemhq/tandem/internal/store"
)

// startConsole adds the web console to mux, over the API's handlers registered there.
func (n *Node) startConsole(mux *http.ServeMux) error {
	c, err := console.New(console.Params{API: mux, Status: n, Auth: n.authn, NodeID: n.cfg.NodeID, ReadOnly: n.cfg.Console.ReadOnly,
		Log: n.log.With("component", "console"), Now: n.clock.Now,
		Revoke: func(ctx context.Context, hash, by, client string) error {
			return n.store.SessionEnd(ctx, store.SessionEndParams{Hash: hash, Audit: store.Audit{By: by, Client: client, Node: n.cfg.NodeID, Now: n.clock.Now()}})
		}})
	if err != nil {
		return err
	}
	c.Register(mux)
	n.console = c
	return nil
}

// LiveOutput is what the command of a run executing on this node has written so far
// (api: GET /api/v1/runs/{id}/live); ok is false when none runs here.
func (n *Node) LiveOutput(runID int64) (stdout, stderr []byte, ok bool) { return n.worker.Live(runID) }
