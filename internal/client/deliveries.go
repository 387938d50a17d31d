package client

import (
	"context"
	"net/url"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// DeliveryListParams filters DeliveryList.
type DeliveryListParams struct {
	Run    int64
	Job    string
	States []string
	Limit  int
	Before int64 // only records with a lower id (0: from the newest)
}

// DeliveryList lists delivery records, newest first.
func (c *Client) DeliveryList(ctx context.Context, p DeliveryListParams) ([]wire.Delivery, error) {
	q := url.Values{}
	if p.Run > 0 {
		q.Set("run", strconv.FormatInt(p.Run, 10))
	}
	if p.Job != "" {
		q.Set("job", p.Job)
	}
	if len(p.States) > 0 {
		q.Set("state", strings.Join(p.States, ","))
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Before > 0 {
		q.Set("before", strconv.FormatInt(p.Before, 10))
	}
	var out []wire.Delivery
	return out, c.call(ctx, get("/api/v1/deliveries?"+q.Encode()), &out)
}

// DeliveryGet returns one record with its attempts.
func (c *Client) DeliveryGet(ctx context.Context, id int64) (wire.Delivery, error) {
	var out wire.Delivery
	return out, c.call(ctx, get("/api/v1/deliveries/"+strconv.FormatInt(id, 10)), &out)
}

// DeliveryRetry makes a failed or disabled record due again. Not sent again to the
// next server after an unanswered one: a second retry would be refused (409, the record
// is pending already), which is not what the first did.
func (c *Client) DeliveryRetry(ctx context.Context, id int64) (wire.Delivery, error) {
	var out wire.Delivery
	return out, c.call(ctx, request{method: "POST", path: "/api/v1/deliveries/" + strconv.FormatInt(id, 10) + "/retry", idempotent: false}, &out)
}
