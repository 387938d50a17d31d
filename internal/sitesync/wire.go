package sitesync

import (
	"encoding/json"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// The sync protocol's messages, sent as JSON to the target's API.

// Routes of the target's API (role sync).
const (
	RouteTarget = "/api/v1/sync/receive"       // GET: TargetState
	RouteBatch  = "/api/v1/sync/receive/batch" // POST Batch: TargetState
	RouteFull   = "/api/v1/sync/receive/full"  // POST Full: TargetState
)

// Substitution rewrites an address on the way to the target.
type Substitution struct {
	From string `json:"from" toml:"from"`
	To   string `json:"to" toml:"to"`
}

// Change is one change of the source's log.
type Change struct {
	Seq    int64           `json:"seq"`
	At     time.Time       `json:"at"`
	Entity string          `json:"entity"`
	Key    string          `json:"key"`
	Op     string          `json:"op"`
	Def    json.RawMessage `json:"def,omitempty"` // the definition as JSON (store.ChangeJob …)
}

// Source says who sends and how the target applies what it sends.
type Source struct {
	Fingerprint    string         `json:"fingerprint"` // the source repository's sync id
	Name           string         `json:"name"`        // for messages: its name and address
	Substitute     []Substitution `json:"substitute,omitempty"`
	StartAfterSync bool           `json:"start_after_sync,omitempty"`
}

// Batch is the source's changes with From < Seq <= To, in order.
type Batch struct {
	Source
	From    int64    `json:"from"`
	To      int64    `json:"to"`
	Changes []Change `json:"changes"`
}

// Full is the source's whole configuration as of Seq.
type Full struct {
	Source
	Seq     int64    `json:"seq"`
	Changes []Change `json:"changes"`
}

// TargetState is a repository's role as a sync target.
type TargetState struct {
	Active     bool      `json:"active"`
	Source     string    `json:"source"`
	SourceName string    `json:"source_name"`
	Cursor     int64     `json:"cursor"`
	AppliedAt  time.Time `json:"applied_at,omitzero"`
	PromotedAt time.Time `json:"promoted_at,omitzero"`
	// IsSource: this cluster has a [sitesync] target itself, so it takes no sync.
	IsSource bool `json:"is_source"`
}

// SenderState is what tandem sync status shows of a source.
type SenderState struct {
	Mode        string    `json:"mode"`
	Targets     []string  `json:"targets"`
	Target      string    `json:"target"` // the server that answered last
	Paused      bool      `json:"paused"`
	Failures    int       `json:"failures"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	LastOKAt    time.Time `json:"last_ok_at,omitzero"`
	Cursor      int64     `json:"cursor"`               // the target's cursor as last acknowledged
	Latest      int64     `json:"latest"`               // this cluster's latest change
	LastChange  time.Time `json:"last_change,omitzero"` // when it was made
	LagChanges  int64     `json:"lag_changes"`
	LagSeconds  float64   `json:"lag_seconds"`
}

// Status is GET /api/v1/sync/status: the sender's side, if this cluster is a source,
// and the target's.
type Status struct {
	Sender *SenderState `json:"sender,omitempty"`
	Target TargetState  `json:"target"`
}

// FullResult is what a full sync did.
type FullResult struct {
	Seq    int64         `json:"seq"`
	Items  int           `json:"items"`
	Took   time.Duration `json:"took_ns"`
	Target TargetState   `json:"target"`
}

// PromoteResult is what tandem sync promote did.
type PromoteResult struct {
	Resumed []string    `json:"resumed"`
	Target  TargetState `json:"target"`
}

func targetState(t store.SyncTarget) TargetState {
	return TargetState{Active: t.Active, Source: t.Source, SourceName: t.SourceName, Cursor: t.Cursor, AppliedAt: t.AppliedAt, PromotedAt: t.PromotedAt}
}
