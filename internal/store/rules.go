package store

import (
	"context"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// Rules is the repository's concern of event rules and the notifications they make
// (internal/notify owns what a rule means; the store keeps its definition as JSON).
// Invariants every engine keeps:
//   - The notifier's cursor (the id of the last event it judged) moves only by
//     NotifyAdvance, a compare-and-set from the value the caller read, fenced by the
//     primary lease's epoch, in the transaction that records the notifications of the
//     events it passes over: an event is judged by every rule exactly once, whichever
//     node is primary.
//   - A notification is unique on (rule, event id, kind): offered twice, it is kept
//     once. A notification that is sent has its delivery records (one per channel of
//     the rule) made in the same transaction; they are sent like a run's (Deliveries).
//   - Event ids commit in increasing order (see EventAppend), so a cursor that passed
//     id N never meets a smaller id committed later.
type Rules interface {
	// RuleApply creates or replaces rules by name, all or none.
	RuleApply(ctx context.Context, p RuleApplyParams) ([]RuleApplyResult, error)
	// RuleGet returns one rule (ErrNotFound).
	RuleGet(ctx context.Context, name string) (Rule, error)
	// RuleList returns every rule by name.
	RuleList(ctx context.Context) ([]Rule, error)
	// RuleDelete removes a rule (ErrNotFound); its notifications stay as history.
	RuleDelete(ctx context.Context, name string) error

	// NotifyState reads the notifier's cursor and its repeat windows.
	NotifyState(ctx context.Context) (NotifyState, error)
	// NotifyAdvance records notifications and moves the cursor from p.From to p.To in
	// one transaction: ErrFenced when p.Epoch is not the primary's, ErrConflict when
	// the cursor is not at p.From any more.
	NotifyAdvance(ctx context.Context, p NotifyAdvanceParams) ([]Notification, error)
	// NotificationList lists notifications, newest first.
	NotificationList(ctx context.Context, p NotificationListParams) ([]Notification, error)
	// NotificationGet returns one notification (ErrNotFound).
	NotificationGet(ctx context.Context, id int64) (Notification, error)
	// EventGet returns one event (ErrNotFound).
	EventGet(ctx context.Context, id int64) (Event, error)
}

// Rule is a stored rule.
type Rule struct {
	Name string
	Spec []byte // the rule as JSON (notify.Spec)
	// SinceEvent is the last event id when the rule was created: it judges only later
	// events, so a new rule does not notify about the past.
	SinceEvent int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// RuleApplyParams creates or replaces rules by name, all or none.
type RuleApplyParams struct {
	Rules []RuleDef
	Now   time.Time
}

// RuleDef is one rule to apply: its name and validated definition as JSON.
type RuleDef struct {
	Name string
	Spec []byte
}

// RuleApplyResult says what RuleApply did.
type RuleApplyResult struct {
	Rule    Rule
	Created bool
}

// Notification kinds.
const (
	NoticeKind = "notice" // about one event
	DigestKind = "digest" // about the repeats a rule suppressed in one window
)

// Notification states.
const (
	NotificationSent       = "sent"       // handed to the delivery records made with it
	NotificationSuppressed = "suppressed" // a repeat within the rule's window: counted, not sent
	NotificationNoChannel  = "recorded"   // the rule has no channel: recorded only
)

// Notification is a rule's judgement of one event that matched it (or a digest).
type Notification struct {
	ID        int64
	Rule      string
	EventID   int64 // a digest: the last event it sums up
	EventType string
	Kind      string
	Key       string // the rule's key for the event: what repeats are judged by
	State     string
	Subject   string
	Body      string
	Count     int   // a digest: how many suppressed events it sums up; else 1
	Epoch     int64 // of the primary that recorded it
	Node      string
	CreatedAt time.Time
	// Deliveries are its delivery records (NotificationGet only).
	Deliveries []Delivery
}

// NotificationNew is a notification to record; Channels are the delivery records to
// make with it (none when suppressed).
type NotificationNew struct {
	Rule      string
	EventID   int64
	EventType string
	Kind      string
	Key       string
	State     string
	Subject   string
	Body      string
	Count     int
	Channels  []job.Deliver
}

// Repeat is the window of one (rule, key): events matching within Until of Since are
// suppressed and counted; the digest sums them up once the window has passed.
type Repeat struct {
	Rule       string
	Key        string
	Since      time.Time // the event that opened the window, which was sent
	Until      time.Time
	Suppressed int
	FirstEvent int64 // the first and last suppressed events (0: none)
	LastEvent  int64
}

// NotifyState is what the notifier resumes from.
type NotifyState struct {
	Cursor  int64
	Repeats []Repeat
}

// NotifyAdvanceParams records Notices, sets (or, with Until zero, removes) the Repeats
// windows given and moves the cursor from From to To.
type NotifyAdvanceParams struct {
	Epoch   int64
	Node    string
	From    int64
	To      int64
	Notices []NotificationNew
	Repeats []Repeat
	Now     time.Time
}

// NotificationListParams filters NotificationList.
type NotificationListParams struct {
	Rule     string
	EventID  int64
	BeforeID int64 // 0: from the newest
	Limit    int   // 0: 100
}
