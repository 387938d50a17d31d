package wire

import (
	"encoding/json"
	"time"
)

// The DR-site sync's messages (internal/sitesync) and its status.

// SyncSubstitution rewrites an address on the way to the DR site.
type SyncSubstitution struct {
	From string `json:"from" toml:"from"`
	To   string `json:"to" toml:"to"`
}

// SyncChange is one change of the source's log.
type SyncChange struct {
	Seq    int64           `json:"seq"`
	At     time.Time       `json:"at"`
	Entity string          `json:"entity"`
	Key    string          `json:"key"`
	Op     string          `json:"op"`
	Def    json.RawMessage `json:"def,omitempty"` // the definition as JSON
}

// SyncSource says who sends and how the target applies what it sends.
type SyncSource struct {
	Fingerprint    string             `json:"fingerprint"` // the source repository's sync id
	Name           string             `json:"name"`        // for messages: its name and address
	Substitute     []SyncSubstitution `json:"substitute,omitempty"`
	StartAfterSync bool               `json:"start_after_sync,omitempty"`
}

// SyncBatch is the body of POST /api/v1/sync/receive/batch: the source's changes with
// From < Seq <= To, in order.
type SyncBatch struct {
	SyncSource
	From    int64        `json:"from"`
	To      int64        `json:"to"`
	Changes []SyncChange `json:"changes"`
}

// SyncFull is the body of POST /api/v1/sync/receive/full: the source's whole
// configuration as of Seq.
type SyncFull struct {
	SyncSource
	Seq     int64        `json:"seq"`
	Changes []SyncChange `json:"changes"`
}

// SyncTarget is a repository's role as a sync target (GET /api/v1/sync/receive).
type SyncTarget struct {
	Active     bool      `json:"active"`
	Source     string    `json:"source"`
	SourceName string    `json:"source_name"`
	Cursor     int64     `json:"cursor"`
	AppliedAt  time.Time `json:"applied_at,omitzero"`
	PromotedAt time.Time `json:"promoted_at,omitzero"`
	// IsSource: this cluster has a [sitesync] target itself, so it takes no sync.
	IsSource bool `json:"is_source"`
	// TransferKey is the public key a source seals synced secrets for (empty: the
	// answering node has not the cluster's secret key and takes no secrets).
	TransferKey []byte `json:"transfer_key,omitempty"`
}

// SyncSecret is a secret's change as a source sends it (sync_secrets): its value
// sealed for the target's transfer key, never the source's ciphertext.
type SyncSecret struct {
	Version int    `json:"version"`
	Sealed  []byte `json:"sealed"`
}

// SyncSender is what tandem sync status shows of a source.
type SyncSender struct {
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

// SyncStatus is GET /api/v1/sync/status: the sender's side, if this cluster is a
// source, and the target's.
type SyncStatus struct {
	Sender *SyncSender `json:"sender,omitempty"`
	Target SyncTarget  `json:"target"`
}

// SyncFullResult is what a full sync did (POST /api/v1/sync/full).
type SyncFullResult struct {
	Seq    int64         `json:"seq"`
	Items  int           `json:"items"`
	Took   time.Duration `json:"took_ns"`
	Target SyncTarget    `json:"target"`
}

// SyncPromoteResult is what tandem sync promote did (POST /api/v1/sync/promote).
type SyncPromoteResult struct {
	Resumed []string   `json:"resumed"`
	Target  SyncTarget `json:"target"`
}
