package sitesync

import (
	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/store"
)

// The sync protocol's messages, sent as JSON to the target's API.

// Routes of the target's API (role sync).
const (
	RouteTarget = "/api/v1/sync/receive"       // GET: TargetState
	RouteBatch  = "/api/v1/sync/receive/batch" // POST Batch: TargetState
	RouteFull   = "/api/v1/sync/receive/full"  // POST Full: TargetState
)

// The messages and the status, as the API's wire package defines them.
type (
	Substitution  = wire.SyncSubstitution
	Change        = wire.SyncChange
	Source        = wire.SyncSource
	Batch         = wire.SyncBatch
	Full          = wire.SyncFull
	TargetState   = wire.SyncTarget
	SenderState   = wire.SyncSender
	Status        = wire.SyncStatus
	FullResult    = wire.SyncFullResult
	PromoteResult = wire.SyncPromoteResult
)

func targetState(t store.SyncTarget) TargetState {
	return TargetState{Active: t.Active, Source: t.Source, SourceName: t.SourceName, Cursor: t.Cursor, AppliedAt: t.AppliedAt, PromotedAt: t.PromotedAt}
}
