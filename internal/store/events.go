package store

import (
	"context"
	"time"
)

// Events is the repository's ordered event log: what happened in the cluster, written
// by the transaction that made it happen wherever one did, and followed by cursors (the
// notifier's).
type Events interface {
	// EventAppend records an event. Event ids commit in increasing order on every engine
	// (on PostgreSQL each event is inserted under a transaction-level lock, so a
	// sequence value taken later cannot commit before one taken earlier): a reader
	// that has seen id N never finds a smaller id committed afterwards. With Dedup, an
	// event of the same Dedup is recorded once (a second is dropped, not an error).
	EventAppend(ctx context.Context, p EventAppendParams) error
	// EventList lists events; see EventListParams.
	EventList(ctx context.Context, p EventListParams) ([]Event, error)
}

// EventAppendParams records one event.
type EventAppendParams struct {
	Dedup   string // "": none
	Type    string
	Node    string
	Message string
	Data    map[string]any
	Now     time.Time
}

// EventListParams filters EventList. Events come newest first; with Follow, oldest
// first from the one after After (what a cursor follows).
type EventListParams struct {
	Type   string
	Follow bool
	After  int64
	Limit  int
}

// Event is something that happened, for operators and notification rules.
type Event struct {
	ID      int64
	Type    string
	At      time.Time
	Node    string
	Message string
	Data    map[string]any
}
