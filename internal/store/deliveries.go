package store

import (
	"context"
	"strconv"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// Deliveries is the repository's concern of delivery records: one per [[deliver]]
// entry of a run's job that matches how the run ended. Invariants every engine keeps:
//   - A run's records are created in the transaction that gives the run its final state
//     (RunFinish, RunFinishBatch, RunCancel, NodeLose, an overlap "replace"), from the
//     job's entries as they were then; at most one per (run, entry), however often a
//     final result is offered.
//   - A record is sent by whoever claimed it last: DeliveryClaim hands it out with a
//     fresh token until an expiry; DeliveryFinish is accepted only with that token. A
//     claim that expired (its claimer died or froze) is handed out again; a lost node's
//     claims are released when it is declared lost. Sending is therefore at-least-once;
//     the record's Key stays the same for every attempt.
type Deliveries interface {
	// DeliveryList lists records, newest first.
	DeliveryList(ctx context.Context, p DeliveryListParams) ([]Delivery, error)
	// DeliveryGet returns one record with its attempts.
	DeliveryGet(ctx context.Context, id int64) (Delivery, error)
	// DeliveryClaim hands out up to Limit due records to p.Node under p.Token.
	DeliveryClaim(ctx context.Context, p DeliveryClaimParams) ([]Delivery, error)
	// DeliveryFinishBatch records attempts' outcomes, each under its claim's token, in one
	// transaction; an attempt whose record is no longer claimed with its token gets
	// ErrStale in its result and changes nothing. A record that ends failed or disabled
	// raises delivery.failed or delivery.disabled in the same transaction. The error is
	// for the batch as a whole (nothing was recorded).
	DeliveryFinishBatch(ctx context.Context, ps []DeliveryFinishParams) ([]DeliveryFinishResult, error)
	// DeliveryRetry makes a failed or disabled record due again now, with a fresh
	// budget of attempts (ErrConflict for any other state).
	DeliveryRetry(ctx context.Context, p DeliveryRetryParams) (Delivery, error)
}

// DeliveryState is where a delivery record is in its life.
type DeliveryState string

// Delivery states; the last three are final.
const (
	DeliveryPending   DeliveryState = "pending"   // due at NextAt
	DeliverySending   DeliveryState = "sending"   // claimed until ClaimUntil
	DeliveryDelivered DeliveryState = "delivered" // the channel accepted it
	DeliveryFailed    DeliveryState = "failed"    // its attempts ran out, or it cannot succeed
	DeliveryDisabled  DeliveryState = "disabled"  // the receiver asked for no more (HTTP 410)
)

// Final reports whether the record will not be sent again (unless retried by hand).
func (s DeliveryState) Final() bool {
	return s == DeliveryDelivered || s == DeliveryFailed || s == DeliveryDisabled
}

// Valid reports whether s is a known state.
func (s DeliveryState) Valid() bool { return s == DeliveryPending || s == DeliverySending || s.Final() }

// Events a delivery record raises.
const (
	EventDeliveryFailed   = "delivery.failed"
	EventDeliveryDisabled = "delivery.disabled"
)

// Delivery is one record: a run's outputs to one [[deliver]] entry.
type Delivery struct {
	ID    int64
	RunID int64 // 0 for a notification's record
	// Notification is the notification (store.Rules) the record sends, 0 for a run's.
	Notification int64
	Job          string
	Entry        int    // index of the entry in the job's deliver list
	Channel      string // job.ChannelEmail, ChannelWebhook or ChannelDirectory
	Spec         job.Deliver
	// Holder is the node that ran the run's last attempt (and keeps its outputs): it is
	// offered the record first.
	Holder string
	State  DeliveryState
	// Attempts counts every attempt; RetryFrom is Attempts when an operator last retried
	// it, so Attempts − RetryFrom counts those since.
	Attempts     int
	RetryFrom    int
	NextAt       time.Time
	ClaimNode    string
	ClaimToken   string
	ClaimUntil   *time.Time
	LastError    string
	LastResponse string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	DeliveredAt  *time.Time
	History      []DeliveryAttempt // DeliveryGet only
}

// Key is the record's idempotency key, the same on every attempt: the webhook-id and
// the root of the mail's Message-ID.
func (d Delivery) Key() string { return DeliveryKey(d.ID) }

// DeliveryKey is the idempotency key of record id.
func DeliveryKey(id int64) string { return "dlv_" + strconv.FormatInt(id, 10) }

// Tries counts the attempts since the record was created or last retried by hand.
func (d Delivery) Tries() int { return d.Attempts - d.RetryFrom }

// DeliveryAttempt is one attempt to send a record.
type DeliveryAttempt struct {
	N          int
	Node       string
	StartedAt  time.Time
	FinishedAt time.Time
	Outcome    DeliveryState // the state the attempt left the record in
	Response   string        // the channel's answer: an SMTP reply, an HTTP status
	Error      string
}

// DeliveryListParams filters DeliveryList.
type DeliveryListParams struct {
	RunID    int64
	Job      string
	States   []DeliveryState
	BeforeID int64 // 0: from the newest
	Limit    int   // 0: 100
}

// DeliveryClaimParams hands out due records: pending ones whose NextAt has come, and
// claims that expired. Records whose Holder is another node are handed out only once
// they have been due for Handoff (so their holder, which has their files, goes first),
// unless their holder is down.
type DeliveryClaimParams struct {
	Node    string
	Token   string
	Now     time.Time
	Until   time.Time // the claim's expiry
	Handoff time.Duration
	Limit   int // 0: 10
}

// DeliveryFinishResult is the outcome of one recorded attempt: the record as it is now,
// or why the attempt was not recorded.
type DeliveryFinishResult struct {
	Delivery Delivery
	Err      error
}

// DeliveryFinish records one attempt: DeliveryFinishBatch of one.
func DeliveryFinish(ctx context.Context, st Deliveries, p DeliveryFinishParams) (Delivery, error) {
	res, err := st.DeliveryFinishBatch(ctx, []DeliveryFinishParams{p})
	if err != nil {
		return Delivery{}, err
	}
	return res[0].Delivery, res[0].Err
}

// DeliveryFinishParams records an attempt. State is DeliveryPending (try again at
// NextAt), DeliveryDelivered, DeliveryFailed or DeliveryDisabled.
type DeliveryFinishParams struct {
	ID        int64
	Token     string
	Node      string
	StartedAt time.Time
	Now       time.Time
	State     DeliveryState
	NextAt    time.Time
	Response  string
	Error     string
}

// DeliveryRetryParams makes a record due again.
type DeliveryRetryParams struct {
	ID  int64
	Now time.Time
	By  string // who asked, for the record's last error
	// Audit, if set, makes the retry an event (delivery.retried) naming who asked and
	// from where, in the retry's transaction.
	Audit *Audit
}
