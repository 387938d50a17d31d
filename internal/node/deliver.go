package node

import (
	"cmp"
	"context"
	"io"

	"github.com/tandemhq/tandem/internal/output"
	"github.com/tandemhq/tandem/internal/store"

	"github.com/tandemhq/tandem/internal/channel"
	"github.com/tandemhq/tandem/internal/deliver"
	"github.com/tandemhq/tandem/internal/job"
)

// newDeliverer builds this node's deliverer from the [smtp] and [deliver] settings.
func (n *Node) newDeliverer() *deliver.Deliverer {
	c := n.cfg
	return deliver.New(deliver.Params{Store: n.store, Log: n.log.With("component", "deliver"), Node: c.NodeID, Now: n.clock.Now,
		Senders: map[string]channel.Sender{
			job.ChannelEmail: &channel.Email{SMTP: channel.SMTP{Host: c.SMTP.Host, Port: c.SMTP.Port, From: c.SMTP.From,
				Username: c.SMTP.Username, Password: c.SMTP.Password, TLS: c.SMTP.TLS, Timeout: c.SMTP.Timeout}},
			job.ChannelWebhook:   &channel.Webhook{},
			job.ChannelDirectory: channel.Directory{},
		},
		Files:       outputFiles{n.outputs},
		BaseURL:     cmp.Or(c.Deliver.BaseURL, n.Scheme()+"://"+c.Advertise),
		MaxAttempts: c.Deliver.MaxAttempts, Backoff: c.Deliver.Backoff, BackoffMax: c.Deliver.BackoffMax,
		Claim: c.Deliver.Claim, Handoff: c.Deliver.Handoff,
		Observe: func(ch string, outcome store.DeliveryState) {
			if outcome == store.DeliveryPending {
				outcome = "retrying"
			}
			n.metrics.Delivered(ch, string(outcome))
		}})
}

// runEnded is called by the worker after it recorded results: capacity is free for the
// dispatcher, and the runs' delivery records are due for the deliverer.
func (n *Node) runEnded() {
	n.RunsQueued()
	n.deliveriesDue()
}

// deliveriesDue wakes the deliverer (a hint: it polls anyway).
func (n *Node) deliveriesDue() {
	if n.deliver != nil {
		n.deliver.Wake()
	}
}

// outputFiles opens a run's outputs for the deliverer through the output service: from
// this node's copy, or fetched from a live holder (and kept) when it has none.
type outputFiles struct{ s *output.Service }

func (f outputFiles) Open(ctx context.Context, o store.Output) (io.ReadCloser, error) {
	return f.s.Open(ctx, o)
}
