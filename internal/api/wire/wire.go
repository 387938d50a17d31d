// Package wire holds the JSON shapes of tandem's REST API: what the server sends and
// the client and the console read. It is a leaf: it imports no server package (only
// job, whose Spec is the job file, the API's own format for a job). The shapes are
// documented in the README and stable: fields are added, never renamed or removed.
// Golden files in cmd/tandem/testdata hold the CLI's --json output of each.
package wire

import (
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// WhoAmI is the answer of GET /api/v1/whoami.
type WhoAmI struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// SwitchRequest is the body of POST /api/v1/switch.
type SwitchRequest struct {
	To string `json:"to"`
}

// SwitchResult is the answer of a switchover.
type SwitchResult struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// NodeActionResult is the answer of an operator action on a node.
type NodeActionResult struct {
	Node   string `json:"node"`
	Action string `json:"action"`
	Mode   string `json:"mode"`
}

// WeightRequest is the body of POST /api/v1/nodes/NODE/weight.
type WeightRequest struct {
	Weight float64 `json:"weight"`
}

// WeightResult is the answer of a weight change.
type WeightResult struct {
	Node   string  `json:"node"`
	Weight float64 `json:"weight"`
}

// Delivery is a delivery record as the API shows it.
type Delivery struct {
	ID           int64             `json:"id"`
	Key          string            `json:"key"` // the idempotency key: webhook-id, root of the Message-ID
	Run          int64             `json:"run"`
	Notification int64             `json:"notification,omitempty"` // the notification it sends (0: a run's)
	Job          string            `json:"job"`
	Entry        int               `json:"entry"`
	Channel      string            `json:"channel"`
	Target       string            `json:"target"`
	State        string            `json:"state"`
	Attempts     int               `json:"attempts"`
	NextAt       *time.Time        `json:"next_at"`    // pending: when it is due
	Node         string            `json:"node"`       // who claimed it last
	LastError    string            `json:"last_error"` // of the last attempt
	LastResponse string            `json:"last_response"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
	DeliveredAt  *time.Time        `json:"delivered_at"`
	History      []DeliveryAttempt `json:"history,omitempty"` // deliveries show only
}

// DeliveryAttempt is one attempt of a delivery.
type DeliveryAttempt struct {
	N          int       `json:"n"`
	Node       string    `json:"node"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Outcome    string    `json:"outcome"` // the state it left the record in
	Response   string    `json:"response"`
	Error      string    `json:"error"`
}

// Rule is an event rule as the API shows it (a webhook secret is not shown).
type Rule struct {
	Name       string       `json:"name"`
	On         []string     `json:"on"`
	When       string       `json:"when"`
	Repeat     string       `json:"repeat"`
	Key        string       `json:"key"`
	Email      *RuleEmail   `json:"email"`
	Webhook    *RuleWebhook `json:"webhook"`
	SinceEvent int64        `json:"since_event"` // it judges the events after this one
	CreatedAt  time.Time    `json:"created_at"`
	UpdatedAt  time.Time    `json:"updated_at"`
}

// RuleApplyResult says what applying one rule did.
type RuleApplyResult struct {
	Name    string `json:"name"`
	Created bool   `json:"created"`
	Rule    Rule   `json:"rule"`
}

// RuleTest is what a rule would do with a stored event, without sending.
type RuleTest struct {
	Rule     string   `json:"rule"`
	Event    Event    `json:"event"`
	Matched  bool     `json:"matched"`
	Why      string   `json:"why"` // why it matched or not
	Key      string   `json:"key,omitempty"`
	Subject  string   `json:"subject,omitempty"`
	Body     string   `json:"body,omitempty"`
	Channels []string `json:"channels,omitempty"` // the targets it would send to
	// Notifications are those the rule made for this event, if any.
	Notifications []Notification `json:"notifications"`
}

// Notification is a rule's notification as the API shows it.
type Notification struct {
	ID         int64      `json:"id"`
	Rule       string     `json:"rule"`
	Event      int64      `json:"event"`
	EventType  string     `json:"event_type"`
	Kind       string     `json:"kind"`  // notice or digest
	Key        string     `json:"key"`   // what repeats are judged by
	State      string     `json:"state"` // sent, suppressed, recorded
	Subject    string     `json:"subject"`
	Count      int        `json:"count"` // a digest: events it sums up
	Epoch      int64      `json:"epoch"`
	Node       string     `json:"node"` // the primary that recorded it
	CreatedAt  time.Time  `json:"created_at"`
	Body       string     `json:"body,omitempty"`       // notifications show only
	Deliveries []Delivery `json:"deliveries,omitempty"` // notifications show only
}

// Secret is a secret as the API shows it: never its value.
type Secret struct {
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

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

// User is a user as the API shows it (never the password hash).
type User struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
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

// OwnPasswordRequest is the body of POST /api/v1/password: a logged-in user's own
// password change, which needs the current one.
type OwnPasswordRequest struct {
	Current  string `json:"current_password"`
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

// IdempotencyKeyHeader carries a client's key for a request that creates a run: the same
// key again returns the run the first request created, so a client may retry it.
const IdempotencyKeyHeader = "Idempotency-Key"

// RuleEmail is a rule's email channel as the API shows it.
type RuleEmail struct {
	To      []string `json:"to"`
	CC      []string `json:"cc,omitempty"`
	BCC     []string `json:"bcc,omitempty"`
	Subject string   `json:"subject,omitempty"`
	Body    string   `json:"body,omitempty"`
}

// RuleWebhook is a rule's webhook channel as the API shows it (its secret is not shown).
type RuleWebhook struct {
	URL     string            `json:"url"`
	Secret  string            `json:"secret,omitempty"`
	Timeout job.Duration      `json:"timeout,omitempty"`
	Headers map[string]string `json:"headers,omitempty"` // values shown as *** unless references
}

// RunListLimitMax is the most runs one GET /api/v1/runs returns; page with before= for more.
const RunListLimitMax = 10000

// LimitProblem is what the API and the CLI say of a limit outside lo..hi.
func LimitProblem(name string, lo, hi int, v string) string {
	return fmt.Sprintf("%s must be a whole number from %d to %d, got %q", name, lo, hi, v)
}

// LiveOutput is the answer of GET /api/v1/runs/{id}/live: what a running command has
// written so far, read from the node that runs it.
type LiveOutput struct {
	Run   int64  `json:"run"`
	State string `json:"state"`
	Node  string `json:"node"`
	// Live says the output was read from the running command; when false, the run is
	// not running (its record has the output kept) or its node could not tell.
	Live   bool   `json:"live"`
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
}
