package client

import (
	"context"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// SyncStatus reads the DR-site sync's state: the sender's, on a source, and the
// cluster's role as a target.
func (c *Client) SyncStatus(ctx context.Context) (wire.SyncStatus, error) {
	var out wire.SyncStatus
	return out, c.call(ctx, get("/api/v1/sync/status"), &out)
}

// SyncFull replaces the target's configuration with this cluster's (a full sync).
// Sending it twice does what once does.
func (c *Client) SyncFull(ctx context.Context) (wire.SyncFullResult, error) {
	var out wire.SyncFullResult
	return out, c.call(ctx, request{method: "POST", path: "/api/v1/sync/full", idempotent: true}, &out)
}

// SyncPause pauses (or, with pause false, resumes) automatic sync.
func (c *Client) SyncPause(ctx context.Context, pause bool) (wire.SyncStatus, error) {
	path := "/api/v1/sync/resume"
	if pause {
		path = "/api/v1/sync/pause"
	}
	var out wire.SyncStatus
	return out, c.call(ctx, request{method: "POST", path: path, idempotent: true}, &out)
}

// SyncPromote ends this cluster's role as a sync target and resumes its held jobs.
func (c *Client) SyncPromote(ctx context.Context) (wire.SyncPromoteResult, error) {
	var out wire.SyncPromoteResult
	return out, c.call(ctx, request{method: "POST", path: "/api/v1/sync/promote"}, &out)
}
