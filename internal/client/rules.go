package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// RuleApply applies a rule file (TOML), all its rules or none.
func (c *Client) RuleApply(ctx context.Context, data []byte) ([]wire.RuleApplyResult, error) {
	var out []wire.RuleApplyResult
	return out, c.call(ctx, request{method: "POST", path: "/api/v1/rules", body: data, ctype: "application/toml",
		idempotent: true}, &out) // by name: the same file again changes nothing
}

// RuleList lists the rules by name.
func (c *Client) RuleList(ctx context.Context) ([]wire.Rule, error) {
	var out []wire.Rule
	return out, c.call(ctx, get("/api/v1/rules"), &out)
}

// RuleGet returns one rule.
func (c *Client) RuleGet(ctx context.Context, name string) (wire.Rule, error) {
	var out wire.Rule
	return out, c.call(ctx, get("/api/v1/rules/"+url.PathEscape(name)), &out)
}

// RuleDelete deletes a rule; its notifications stay.
func (c *Client) RuleDelete(ctx context.Context, name string) error {
	return c.call(ctx, request{method: "DELETE", path: "/api/v1/rules/" + url.PathEscape(name), idempotent: false}, nil)
}

// RuleTest judges a stored event by a rule and returns the message it would send.
func (c *Client) RuleTest(ctx context.Context, name string, event int64) (wire.RuleTest, error) {
	var out wire.RuleTest
	return out, c.call(ctx, get("/api/v1/rules/"+url.PathEscape(name)+"/test?event="+strconv.FormatInt(event, 10)), &out)
}

// NotificationListParams filters NotificationList.
type NotificationListParams struct {
	Rule   string
	Event  int64
	Limit  int
	Before int64
}

// NotificationList lists notifications, newest first.
func (c *Client) NotificationList(ctx context.Context, p NotificationListParams) ([]wire.Notification, error) {
	q := url.Values{}
	if p.Rule != "" {
		q.Set("rule", p.Rule)
	}
	if p.Event > 0 {
		q.Set("event", strconv.FormatInt(p.Event, 10))
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Before > 0 {
		q.Set("before", strconv.FormatInt(p.Before, 10))
	}
	var out []wire.Notification
	return out, c.call(ctx, get("/api/v1/notifications?"+q.Encode()), &out)
}

// NotificationGet returns one notification with its delivery records.
func (c *Client) NotificationGet(ctx context.Context, id int64) (wire.Notification, error) {
	var out wire.Notification
	return out, c.call(ctx, get("/api/v1/notifications/"+strconv.FormatInt(id, 10)), &out)
}
