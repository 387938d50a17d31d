package api

import "github.com/tandemhq/tandem/internal/api/wire"

// The API's JSON shapes live in the leaf package wire (the client imports only that);
// these names keep the handlers' code short.
type (
	WhoAmI             = wire.WhoAmI
	SwitchRequest      = wire.SwitchRequest
	SwitchResult       = wire.SwitchResult
	NodeActionResult   = wire.NodeActionResult
	WeightRequest      = wire.WeightRequest
	WeightResult       = wire.WeightResult
	Delivery           = wire.Delivery
	DeliveryAttempt    = wire.DeliveryAttempt
	Rule               = wire.Rule
	RuleApplyResult    = wire.RuleApplyResult
	RuleTest           = wire.RuleTest
	Notification       = wire.Notification
	Secret             = wire.Secret
	Job                = wire.Job
	ApplyResult        = wire.ApplyResult
	Run                = wire.Run
	Output             = wire.Output
	Holder             = wire.Holder
	Status             = wire.Status
	NodeStatus         = wire.NodeStatus
	Hold               = wire.Hold
	Service            = wire.Service
	Event              = wire.Event
	Error              = wire.Error
	User               = wire.User
	Token              = wire.Token
	TokenCreated       = wire.TokenCreated
	UserRequest        = wire.UserRequest
	PasswordRequest    = wire.PasswordRequest
	OwnPasswordRequest = wire.OwnPasswordRequest
	TokenRequest       = wire.TokenRequest
	LoginRequest       = wire.LoginRequest
	LoginResult        = wire.LoginResult
	LiveOutput         = wire.LiveOutput
)

// IdempotencyKeyHeader carries a client's key for a request that creates a run.
const IdempotencyKeyHeader = wire.IdempotencyKeyHeader
