package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// Sync is the repository's concern of the configuration change log and of the
// disaster-recovery site sync that streams it (internal/sitesync owns the protocol).
// Invariants every engine keeps:
//   - Every configuration change (a job applied, deleted, paused or resumed, a rule
//     applied or deleted, a synced setting set) appends one Change per entity, in the
//     transaction that makes it, with a sequence number one above the last: sequences
//     are gap-free and commit in order (the counter row is locked to commit), so a reader
//     that has seen Seq N never finds a smaller one committed later. ConfigVersion is the
//     latest sequence.
//   - A target applies a batch and moves its cursor in one transaction, a compare-and-set
//     from the cursor the sender read: a change is applied once and in order, whatever
//     crashes on either side. A full sync replaces the whole configuration and sets the
//     cursor in one transaction: all or none.
//   - While a repository is an active target its jobs, rules and their pause state change
//     only through the sync (ErrSyncTarget otherwise), and it takes changes from its one
//     recorded source only (ErrSyncSource otherwise) until SyncPromote ends the role.
type Sync interface {
	// ChangeList returns the changes after p.After, oldest first.
	ChangeList(ctx context.Context, p ChangeListParams) ([]Change, error)
	// ChangeLogState reads the change log's bounds and the repository's clock.
	ChangeLogState(ctx context.Context) (ChangeLog, error)
	// ChangePrune deletes the changes older than p.Before except the newest p.Keep; it
	// returns how many it deleted. A cursor older than what is left needs a full sync.
	ChangePrune(ctx context.Context, p ChangePruneParams) (int, error)
	// ConfigSnapshot reads the whole synced configuration as of one sequence, in one
	// read transaction: each entity as an "apply" or "set" Change.
	ConfigSnapshot(ctx context.Context) (Snapshot, error)

	// SyncTargetGet reads this repository's role as a sync target.
	SyncTargetGet(ctx context.Context) (SyncTarget, error)
	// SyncApply applies one batch of a source's changes and moves the cursor from
	// p.From to p.To in one transaction. ErrConflict when the cursor is not at p.From
	// (nothing applied: the caller reads the cursor again), ErrSyncSource for another
	// source, ErrNotTarget when the repository is not an active target.
	SyncApply(ctx context.Context, p SyncApplyParams) (SyncTarget, error)
	// SyncReplace replaces the whole synced configuration with a snapshot and sets the
	// cursor to p.Seq in one transaction, making the repository p.Source's target.
	// ErrSyncSource while it is the active target of another source.
	SyncReplace(ctx context.Context, p SyncReplaceParams) (SyncTarget, error)
	// SyncPromote ends the target role and resumes the jobs the sync held paused; it
	// returns their names. ErrNotTarget when it is not an active target.
	SyncPromote(ctx context.Context, p SyncPromoteParams) (SyncTarget, []string, error)

	// SyncSourceGet reads the sender's stored state; SyncSourceSet replaces it, all but
	// Paused, which only SyncSourcePause sets (an operator's pause on any node is never
	// overwritten by the sender's bookkeeping); resuming also clears Failures. Both
	// record the events that say what changed (sync.failed, sync.succeeded, sync.paused,
	// sync.resumed, sync.full) in the transaction of the change.
	SyncSourceGet(ctx context.Context) (SyncSource, error)
	SyncSourceSet(ctx context.Context, st SyncSource, events ...EventAppendParams) error
	SyncSourcePause(ctx context.Context, paused bool, events ...EventAppendParams) error
}

// Errors of the sync concern.
var (
	// ErrSyncTarget: a local configuration change on an active sync target.
	ErrSyncTarget = errors.New("this cluster is a sync target")
	// ErrSyncSource: changes from a source other than the target's recorded one.
	ErrSyncSource = errors.New("another sync source")
	// ErrNotTarget: a batch for a repository that is not an active target.
	ErrNotTarget = errors.New("not an active sync target")
)

// SyncTargetError is ErrSyncTarget naming the source.
type SyncTargetError struct{ Source string }

func (e *SyncTargetError) Error() string {
	return fmt.Sprintf("this cluster is a disaster-recovery sync target of %s: its configuration changes only through the sync (tandem sync promote ends that role)", e.Source)
}

// Unwrap makes errors.Is(err, ErrSyncTarget) hold.
func (e *SyncTargetError) Unwrap() error { return ErrSyncTarget }

// Change entities and operations.
const (
	EntityJob     = "job"
	EntityRule    = "rule"
	EntitySetting = "setting"
	// Users, API tokens (their hashes) and secrets (their ciphertexts) are logged too;
	// a source sends users and tokens only with sitesync.sync_users, and secrets only
	// with sitesync.sync_secrets (internal/sitesync opens each and seals it again for
	// the target's key: a target stores ChangeSecrets sealed with its own).
	EntityUser   = "user"
	EntityToken  = "token"
	EntitySecret = "secret"

	OpApply  = "apply"
	OpDelete = "delete"
	OpPause  = "pause"
	OpResume = "resume"
	OpSet    = "set"
)

// SyncedSettings are the settings that are configuration (logged and synced); the
// others are a cluster's own state (node weights, scheduler slots, secrets' keys).
var SyncedSettings = []string{SettingDispatchAlgorithm}

// Change is one configuration change.
type Change struct {
	Seq    int64
	At     time.Time // the repository's clock
	Entity string
	Key    string // the job's, rule's or setting's name
	Op     string
	// Def is the new definition as JSON (ChangeJob, ChangeRule, ChangeSetting); nil
	// for a delete.
	Def json.RawMessage
	// SourceSeq is, on a target, the source's sequence this change applied (0: local).
	SourceSeq int64
	// Rewritten lists, on a target, what address substitution rewrote.
	Rewritten []string
}

// ChangeJob is a job's definition in the change log.
type ChangeJob struct {
	Spec      job.Spec         `json:"spec"`
	Schedules []ChangeSchedule `json:"schedules"`
	Paused    bool             `json:"paused"`
	// Held (on a target): paused by the sync though its source runs it; SyncPromote
	// resumes it.
	Held bool `json:"held,omitempty"`
}

// ChangeSchedule is one schedule's identity in a ChangeJob.
type ChangeSchedule struct {
	Key  string `json:"key"`
	Expr string `json:"expr"`
}

// ChangeRule is a rule's definition in the change log.
type ChangeRule struct {
	Spec json.RawMessage `json:"spec"`
}

// ChangeSetting is a setting's value in the change log.
type ChangeSetting struct {
	Value string `json:"value"`
}

// ChangeUser is a user's definition in the change log.
type ChangeUser struct {
	Role string `json:"role"`
	Hash string `json:"hash"` // the argon2id hash
}

// ChangeToken is an API token's definition in the change log: its hash, never its
// secret.
type ChangeToken struct {
	Role      string     `json:"role"`
	Hash      string     `json:"hash"`
	CreatedBy string     `json:"created_by"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// ChangeSecret is a secret's new version in the change log, still encrypted.
type ChangeSecret struct {
	Version    int    `json:"version"`
	Ciphertext []byte `json:"ciphertext"`
}

// ChangeListParams selects changes after a cursor.
type ChangeListParams struct {
	After int64
	Limit int // 0: 1000
}

// ChangeLog is the change log's state.
type ChangeLog struct {
	Oldest   int64     // the oldest change kept (0: none kept)
	Latest   int64     // the latest sequence (ConfigVersion)
	LatestAt time.Time // when the latest kept change was made (zero: none kept)
	Now      time.Time // the repository's clock
}

// ChangePruneParams bounds the change log's retention.
type ChangePruneParams struct {
	Before time.Time
	Keep   int
}

// Snapshot is the whole synced configuration as of Seq.
type Snapshot struct {
	Seq     int64
	Changes []Change
}

// SyncTarget is a repository's role as a sync target.
type SyncTarget struct {
	Active     bool   // it is a target: local changes are refused
	Source     string // the source's fingerprint ("" : never synced)
	SourceName string // how the source names itself (its node and address), for messages
	Cursor     int64  // the last source sequence applied
	AppliedAt  time.Time
	PromotedAt time.Time // zero: never promoted
	Now        time.Time // the repository's clock
}

// SyncApplyParams is one batch: the changes of Source with From < Seq <= To, in order
// (changes the sender filters out leave gaps; the cursor still moves to To).
type SyncApplyParams struct {
	Source     string
	SourceName string
	From, To   int64
	Changes    []Change
	Now        time.Time
}

// SyncReplaceParams is a full sync: Changes (applies and sets) are the whole
// configuration as of Seq; every job and rule not among them is deleted, and every
// user, token and secret an earlier sync brought (the target's own stay).
type SyncReplaceParams struct {
	Source     string
	SourceName string
	Seq        int64
	Changes    []Change
	Now        time.Time
}

// SyncPromoteParams says who promoted the target.
type SyncPromoteParams struct {
	Audit Audit
}

// SyncSource is the sender's state, kept in the source's repository so that the next
// primary resumes it.
type SyncSource struct {
	Paused      bool
	Failures    int // consecutive failed batches
	LastError   string
	LastErrorAt time.Time
	LastOKAt    time.Time
	Acked       int64  // the target's cursor as last seen
	Target      string // the target server that answered last
}
