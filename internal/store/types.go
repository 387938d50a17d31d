package store

import "time"

// RunState is where a run is in its life.
type RunState string

// Run states. The last five are final.
const (
	RunQueued    RunState = "queued"
	RunAssigned  RunState = "assigned"
	RunRunning   RunState = "running"
	RunSucceeded RunState = "succeeded"
	RunFailed    RunState = "failed"
	RunCanceled  RunState = "canceled"
	RunSkipped   RunState = "skipped"
	RunMissed    RunState = "missed"
)

// Final reports whether no further change can happen to a run in this state.
func (s RunState) Final() bool {
	switch s {
	case RunSucceeded, RunFailed, RunCanceled, RunSkipped, RunMissed:
		return true
	}
	return false
}

// Valid reports whether s is a known state.
func (s RunState) Valid() bool {
	switch s {
	case RunQueued, RunAssigned, RunRunning:
		return true
	}
	return s.Final()
}

// Run triggers.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
)

// Run is one execution of a job, scheduled or on demand, with its attempts.
type Run struct {
	ID          int64
	JobID       int64
	Job         string
	ScheduleID  int64      // 0 for on-demand runs
	ScheduledAt *time.Time // nil for on-demand runs
	// ScheduledUntil and Occurrences describe a record covering a stretch of occurrences
	// (missed or blacked out): from ScheduledAt to ScheduledUntil, Occurrences of them.
	ScheduledUntil  *time.Time
	Occurrences     int
	Trigger         string
	State           RunState
	Attempt         int // 0 until first assigned
	MaxAttempts     int
	Token           string
	Node            string
	Epoch           int64 // epoch of the primary that last assigned it
	CreatedAt       time.Time
	NotBefore       time.Time
	StartedAt       *time.Time
	FinishedAt      *time.Time
	ExitCode        *int
	Reason          string
	CancelRequested bool
	Stdout          []byte // RunGet only
	Stderr          []byte // RunGet only
}

// Output is a file a run produced, kept in the data directory of the node that ran it.
type Output struct {
	RunID     int64
	Attempt   int
	Name      string
	Size      int64
	SHA256    string
	Node      string
	CreatedAt time.Time
}

// Node is a cluster member as last heard of.
type Node struct {
	ID          string
	Holder      string // the process that claimed the id (node id and incarnation)
	Address     string
	Mode        string
	Priority    int
	Capacity    int
	Running     int
	Weight      float64 // load-balancing weight; 1 by default
	Tags        []string
	StartedAt   time.Time
	HeartbeatAt time.Time
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
