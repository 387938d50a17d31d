package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/client"
)

// Receiver is a webhook endpoint in the harness's process: it verifies each request's
// Standard Webhooks signature with the specification's own library. Every FailEvery-th
// verified request (when not 0) is answered 503, so that deliveries are also retried;
// the others get 204 and are counted by webhook-id: what the receiver accepted.
type Receiver struct {
	FailEvery int

	wh  *standardwebhooks.Webhook
	srv *httptest.Server

	mu   sync.Mutex
	n    int            // verified requests
	seen map[string]int // accepted requests by webhook-id
	bad  int            // requests whose signature did not verify
}

// NewReceiver starts a receiver checking signatures under secret (whsec_…); Close
// stops it.
func NewReceiver(secret string, failEvery int) (*Receiver, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, fmt.Errorf("start webhook receiver: %w", err)
	}
	r := &Receiver{FailEvery: failEvery, wh: wh, seen: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r, nil
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(req.Body)
	if err == nil {
		err = r.wh.Verify(b, req.Header)
	}
	r.mu.Lock()
	if err != nil {
		r.bad++
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	r.n++
	fail := r.FailEvery > 0 && r.n%r.FailEvery == 0
	if !fail {
		r.seen[req.Header.Get("webhook-id")]++
	}
	r.mu.Unlock()
	if fail {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// URL is where the receiver listens.
func (r *Receiver) URL() string { return r.srv.URL }

// Seen returns the accepted requests by webhook-id and the count of requests that
// failed verification.
func (r *Receiver) Seen() (byID map[string]int, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byID = make(map[string]int, len(r.seen))
	for k, v := range r.seen {
		byID[k] = v
	}
	return byID, r.bad
}

// Close stops the receiver.
func (r *Receiver) Close() { r.srv.Close() }

// settleDeliveries waits until every delivery record of job is final, and returns the
// records from that last look. Records are made with their run's end, so once the runs
// settled, none is still to come. When no record became final for settleStall, it
// returns what it has: the history check reports the records left open.
func settleDeliveries(ctx context.Context, c *Cluster, job string, progress func(string, ...any)) ([]api.Delivery, error) {
	lastNote, lastProgress := time.Now(), time.Now()
	fewest := -1
	var note string
	var last []api.Delivery
	for {
		ds, err := allDeliveries(ctx, c, job)
		if err == nil {
			last = ds
			var open []string
			for _, d := range ds {
				if d.State == "pending" || d.State == "sending" {
					open = append(open, fmt.Sprintf("%s %s attempts %d node %q", d.Key, d.State, d.Attempts, d.Node))
				}
			}
			if len(open) == 0 {
				return ds, nil
			}
			note = fmt.Sprintf("%d deliveries not final, e.g. [%v]", len(open), open[:min(len(open), 3)])
			if fewest < 0 || len(open) < fewest {
				fewest, lastProgress = len(open), time.Now()
			}
		} else {
			note = "last error: " + err.Error()
		}
		if time.Since(lastNote) >= 10*time.Second {
			lastNote = time.Now()
			progress("settling deliveries of %s: %s", job, note)
		}
		if time.Since(lastProgress) > settleStall {
			if last == nil {
				return nil, fmt.Errorf("settle deliveries of %s: %s", job, note)
			}
			progress("deliveries of %s did not settle in %s: %s", job, settleStall, note)
			return last, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("settle deliveries of %s: %w (%s)", job, ctx.Err(), note)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// allDeliveries reads every delivery record of a job's runs, newest first, in pages.
func allDeliveries(ctx context.Context, c *Cluster, job string) ([]api.Delivery, error) {
	const page = 2000
	var out []api.Delivery
	var before int64
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*CallTimeout)
		ds, err := c.Client().DeliveryList(cctx, client.DeliveryListParams{Job: job, Limit: page, Before: before})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list deliveries of %s: %w", job, err)
		}
		out = append(out, ds...)
		if len(ds) < page {
			return out, nil
		}
		before = ds[len(ds)-1].ID
	}
}
