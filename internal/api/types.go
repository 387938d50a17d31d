// Package api is tandem's REST API: the HTTP handlers every node serves and the JSON
// types they exchange, shared with the Go client. The JSON shapes are documented in the
// README and are stable: fields are added, never renamed or removed.
package api

import (
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// Job is a job as the API shows it: the job file's fields plus its state.
type Job struct {
	job.Spec
	Paused     bool       `json:"paused"`
	NextFireAt *time.Time `json:"next_fire_at"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// ApplyResult is one job of an apply.
type ApplyResult struct {
	Name    string `json:"name"`
	Created bool   `json:"created"`
	Job     Job    `json:"job"`
}

// Run is a run as the API shows it.
type Run struct {
	ID              int64      `json:"id"`
	Job             string     `json:"job"`
	State           string     `json:"state"`
	Attempt         int        `json:"attempt"`
	MaxAttempts     int        `json:"max_attempts"`
	Node            string     `json:"node"`
	Trigger         string     `json:"trigger"`
	ScheduledAt     *time.Time `json:"scheduled_at"`
	ScheduledUntil  *time.Time `json:"scheduled_until,omitempty"`
	Occurrences     int        `json:"occurrences"`
	CreatedAt       time.Time  `json:"created_at"`
	NotBefore       time.Time  `json:"not_before"`
	StartedAt       *time.Time `json:"started_at"`
	FinishedAt      *time.Time `json:"finished_at"`
	DurationMS      *int64     `json:"duration_ms"`
	ExitCode        *int       `json:"exit_code"`
	Reason          string     `json:"reason"`
	CancelRequested bool       `json:"cancel_requested"`
	Epoch           int64      `json:"epoch"`
	// ScheduleID is the schedule that fired a scheduled run (absent for on-demand runs):
	// with scheduler slots, its slot is ScheduleID mod the number of slots.
	ScheduleID int64      `json:"schedule_id,omitempty"`
	Stdout     *string    `json:"stdout,omitempty"`
	Stderr     *string    `json:"stderr,omitempty"`
	Outputs    []Output   `json:"outputs,omitempty"`
	Deliveries []Delivery `json:"deliveries,omitempty"` // runs show: its delivery records
}

// Output is a file a run produced, with the nodes that hold it.
type Output struct {
	Run     int64     `json:"run"`
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	Node    string    `json:"node"` // the node that produced it
	Attempt int       `json:"attempt"`
	Created time.Time `json:"created_at"`
	// Copies is how many verified copies it should have now (its job's copies or
	// output_copies, at most the live nodes); Durable says it has them.
	Copies  int      `json:"copies"`
	Durable bool     `json:"durable"`
	Holders []Holder `json:"holders"`
}

// Holder is one node's copy of an output.
type Holder struct {
	Node string `json:"node"`
	// State: verified (a checked copy on a live node), copying, down (a checked copy on
	// a node that is not live) or lost (the node was declared lost holding it).
	State      string     `json:"state"`
	VerifiedAt *time.Time `json:"verified_at"`
	LostAt     *time.Time `json:"lost_at,omitempty"`
}

// Status is the cluster's server-status table.
type Status struct {
	Primary string       `json:"primary"`
	Epoch   int64        `json:"epoch"`
	Nodes   []NodeStatus `json:"nodes"`
	// Suspended is the stored suspension of the primary role, whoever holds it.
	Suspended *Hold `json:"suspended,omitempty"`
}

// NodeStatus is one row of the status table.
type NodeStatus struct {
	ID          string    `json:"id"`
	Address     string    `json:"address"`
	Mode        string    `json:"mode"`
	Running     int       `json:"running"`
	Queued      int       `json:"queued"`
	Capacity    int       `json:"capacity"`
	Priority    int       `json:"priority"`
	Weight      float64   `json:"weight"`
	Tags        []string  `json:"tags"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	// StartedAt is when the node's process started; Version the tandem it runs.
	StartedAt time.Time `json:"started_at"`
	Version   string    `json:"version"`
	Services  []Service `json:"services"`
	// Slots are the scheduler slots the node fires, when the cluster has several.
	Slots []string `json:"slots,omitempty"`
	// Hold is the operator hold on this node: a held standby's, or, on the primary's
	// row, the suspension of the primary role. Absent when there is none.
	Hold *Hold `json:"hold,omitempty"`
}

// Hold is an operator hold as the status shows it.
type Hold struct {
	Kind string    `json:"kind"` // "suspend" or "standby"
	By   string    `json:"by"`
	At   time.Time `json:"at"`
}

// Service is one service of a node and its status.
type Service struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// Event is something that happened in the cluster.
type Event struct {
	ID      int64          `json:"id"`
	Type    string         `json:"type"`
	At      time.Time      `json:"at"`
	Node    string         `json:"node"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data"`
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// JobFrom converts a stored job.
func JobFrom(j store.Job) Job {
	v := Job{Spec: redactSpec(j.Spec), Paused: j.Paused, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
	if j.Spec.Schedule == nil {
		v.Schedule = []string{}
	}
	if j.Paused {
		return v
	}
	scheds, _ := j.Spec.Schedules()
	for _, sc := range j.Schedules {
		next := sc.NextFireAt
		if next == nil && !sc.Done && sc.Index < len(scheds) {
			// Not yet initialised by the scheduler (just applied or resumed): show
			// what it will compute.
			if t, ok := scheds[sc.Index].Next(time.Now()); ok {
				next = &t
			}
		}
		if next != nil && (v.NextFireAt == nil || next.Before(*v.NextFireAt)) {
			t := next.UTC()
			v.NextFireAt = &t
		}
	}
	return v
}

// RunFrom converts a stored run.
func RunFrom(r store.Run) Run {
	v := Run{ID: r.ID, Job: r.Job, State: string(r.State), Attempt: r.Attempt, MaxAttempts: r.MaxAttempts, Node: r.Node,
		Trigger: r.Trigger, ScheduledAt: r.ScheduledAt, ScheduledUntil: r.ScheduledUntil, Occurrences: r.Occurrences,
		CreatedAt: r.CreatedAt, NotBefore: r.NotBefore, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, ExitCode: r.ExitCode,
		Reason: r.Reason, CancelRequested: r.CancelRequested, Epoch: r.Epoch, ScheduleID: r.ScheduleID}
	if r.StartedAt != nil && r.FinishedAt != nil {
		d := r.FinishedAt.Sub(*r.StartedAt).Milliseconds()
		v.DurationMS = &d
	}
	return v
}

// OutputFrom converts a stored output.
func OutputFrom(o store.Output) Output {
	v := Output{Run: o.RunID, Name: o.Name, Size: o.Size, SHA256: o.SHA256, Node: o.Node, Attempt: o.Attempt, Created: o.CreatedAt,
		Holders: []Holder{}}
	for _, h := range o.Holders {
		v.Holders = append(v.Holders, Holder{Node: h.Node, VerifiedAt: h.VerifiedAt, LostAt: h.LostAt})
	}
	return v
}

// User is a user as the API shows it (never the password hash).
type User struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// UserFrom converts a stored user.
func UserFrom(u store.User) User {
	return User{Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// Token is an API token as the API shows it (never its secret, but when it is made).
type Token struct {
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// TokenFrom converts a stored token.
func TokenFrom(t store.Token) Token {
	return Token{Name: t.Name, Role: t.Role, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt}
}

// TokenCreated is the answer of POST /api/v1/tokens: the secret, shown this once.
type TokenCreated struct {
	Token  Token  `json:"token"`
	Secret string `json:"secret"`
}

// UserRequest is the body of POST /api/v1/users.
type UserRequest struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

// PasswordRequest is the body of POST /api/v1/users/NAME/password.
type PasswordRequest struct {
	Password string `json:"password"`
}

// TokenRequest is the body of POST /api/v1/tokens. Expires is a duration ("720h",
// "30d"); "" never expires.
type TokenRequest struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Expires string `json:"expires,omitempty"`
}

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// LoginResult is the answer of a login: a session token, shown this once.
type LoginResult struct {
	Token     string    `json:"token"`
	User      string    `json:"user"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at"`
}
