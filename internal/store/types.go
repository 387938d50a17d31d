package store

import (
	"fmt"
	"time"
)

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

// Output is a file a run produced, kept in the data directory of the node that ran it
// (Node) and of every node that holds a verified copy of it (Holders).
type Output struct {
	RunID     int64
	Attempt   int
	Name      string
	Size      int64
	SHA256    string
	Node      string // the producer
	CreatedAt time.Time
	// Copies is how many verified copies the job asked for (its copies setting); 0:
	// the cluster's default (output_copies).
	Copies int
	// Holders are the nodes that hold, are making, or held a copy (the producer
	// among them); filled by the Outputs reads.
	Holders []Holder
}

// Ref names the output.
func (o Output) Ref() OutputRef { return OutputRef{RunID: o.RunID, Attempt: o.Attempt, Name: o.Name} }

// OutputRef names one output file: a run's attempt and the file's slash-separated name.
type OutputRef struct {
	RunID   int64
	Attempt int
	Name    string
}

// String is the ref as the API and events show it: RUN/ATTEMPT/NAME.
func (r OutputRef) String() string { return fmt.Sprintf("%d/%d/%s", r.RunID, r.Attempt, r.Name) }

// Holder is one node's copy of an output.
type Holder struct {
	Node string
	// VerifiedAt is when the node recorded a copy whose SHA-256 it checked; nil while
	// the copy is being made, under a claim that lasts until ClaimUntil.
	VerifiedAt *time.Time
	ClaimUntil *time.Time
	// LostAt is when the node was declared lost holding the copy: it does not count
	// until the node comes back and checks the copy again.
	LostAt *time.Time
}

// Verified reports whether the holder has a checked copy and was not lost since.
func (h Holder) Verified() bool { return h.VerifiedAt != nil && h.LostAt == nil }

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
	Version     string // the tandem version the node runs ("" before it reported one)
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
