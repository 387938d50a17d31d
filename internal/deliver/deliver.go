package deliver

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/channel"
	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// Defaults of Params.
const (
	MaxAttemptsDefault = 8
	BackoffDefault     = 5 * time.Second
	BackoffMaxDefault  = 10 * time.Hour
	// BackoffFactor multiplies the delay after each failed attempt: with the defaults,
	// 5s, 30s, 3m, 18m, 1.8h, 10h, 10h — eight attempts over about 22 hours.
	BackoffFactor  = 6
	ClaimDefault   = 2 * time.Minute
	HandoffDefault = 5 * time.Second
	PollDefault    = time.Second
	// ConcurrencyDefault is how many records one node sends at once.
	ConcurrencyDefault = 8
)

// Store is what a Deliverer needs of the repository.
type Store interface {
	store.Deliveries
	RunGet(ctx context.Context, id int64) (store.Run, error)
	OutputList(ctx context.Context, runID int64) ([]store.Output, error)
	JobGet(ctx context.Context, name string) (store.Job, error)
	// A notification's record (Delivery.Notification) sends the notification.
	NotificationGet(ctx context.Context, id int64) (store.Notification, error)
	EventGet(ctx context.Context, id int64) (store.Event, error)
}

// Params configures a Deliverer.
type Params struct {
	Store Store
	Log   *slog.Logger
	Node  string
	Now   func() time.Time // the node's clock corrected to the repository's
	// Senders by channel name (job.ChannelEmail, …).
	Senders map[string]channel.Sender
	// Files opens the outputs a channel sends.
	Files FileSource
	// BaseURL starts the links to a run and its outputs: "http://HOST:PORT".
	BaseURL     string
	MaxAttempts int           // per record, since it was made or retried; default 8
	Backoff     time.Duration // the delay after the first failed attempt; default 5s
	BackoffMax  time.Duration // default 10h
	Claim       time.Duration // how long a claim holds; a send is cut off before; default 2m
	Handoff     time.Duration // how long a record waits for its holder; default 5s
	Poll        time.Duration // default 1s: the run's own node is woken as the run ends
	Concurrency int           // default 8
	// Secret reads a secret's value on this node, for the {{secret "NAME"}} references
	// of an entry (webhook URL, secret and headers) and of the channels' own settings
	// (the SMTP password), resolved at each attempt; nil: none can be.
	Secret func(ctx context.Context, name string) (string, error)
	// Observe, if set, is told each recorded attempt's channel and outcome (pending:
	// to be retried), for the metrics.
	Observe func(channel string, outcome store.DeliveryState)
}

// Deliverer claims due records and sends them. Run owns its goroutines and returns
// once they have ended.
type Deliverer struct {
	p    Params
	wake chan struct{}

	mu       sync.Mutex
	queue    []finishReq // attempts waiting to be recorded
	flushing bool        // a sender is recording the queue
}

type finishReq struct {
	p    store.DeliveryFinishParams
	done chan store.DeliveryFinishResult
}

// New returns a Deliverer; Run runs it.
func New(p Params) *Deliverer {
	if p.Now == nil {
		p.Now = time.Now
	}
	p.MaxAttempts = cmp.Or(p.MaxAttempts, MaxAttemptsDefault)
	p.Backoff = cmp.Or(p.Backoff, BackoffDefault)
	p.BackoffMax = max(cmp.Or(p.BackoffMax, BackoffMaxDefault), p.Backoff)
	p.Claim = cmp.Or(p.Claim, ClaimDefault)
	p.Handoff = cmp.Or(p.Handoff, HandoffDefault)
	p.Poll = cmp.Or(p.Poll, PollDefault)
	p.Concurrency = cmp.Or(p.Concurrency, ConcurrencyDefault)
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{p: p, wake: make(chan struct{}, 1)}
}

// Wake makes the deliverer look for due records now (a run ended, a hint came).
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run claims and sends until ctx ends, then waits for the sends in flight: a send cut
// short by ctx is recorded as a failed attempt, due again at once (for another node).
func (d *Deliverer) Run(ctx context.Context) error {
	slots := make(chan struct{}, d.p.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(d.p.Poll)
	defer t.Stop()
	for {
		free := cap(slots) - len(slots)
		if free > 0 {
			recs, err := d.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				d.p.Log.Warn("cannot claim deliveries", "err", err)
			}
			for _, rec := range recs {
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					d.send(ctx, rec)
					<-slots
					d.Wake() // a slot is free: more may be due
				}()
			}
			if len(recs) == free {
				continue // more may be waiting
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-t.C:
		}
	}
}

// Once claims and sends what is due now, waiting for the sends: for tests and tools.
func (d *Deliverer) Once(ctx context.Context) (int, error) {
	recs, err := d.claim(ctx, d.p.Concurrency)
	var wg sync.WaitGroup
	for _, rec := range recs {
		wg.Add(1)
		go func() { defer wg.Done(); d.send(ctx, rec) }()
	}
	wg.Wait()
	return len(recs), err
}

func (d *Deliverer) claim(ctx context.Context, limit int) ([]store.Delivery, error) {
	now := d.p.Now()
	return d.p.Store.DeliveryClaim(ctx, store.DeliveryClaimParams{Node: d.p.Node, Token: token(), Now: now,
		Until: now.Add(d.p.Claim), Handoff: d.p.Handoff, Limit: limit})
}

func token() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// send makes one attempt at rec and records its outcome.
func (d *Deliverer) send(ctx context.Context, rec store.Delivery) {
	started := d.p.Now()
	// Cut off before the claim expires, so that another node does not start while this
	// one still sends (at-least-once either way, but a repetition is rarer).
	sctx, cancel := context.WithTimeout(ctx, d.p.Claim*9/10)
	res, err := d.attempt(sctx, rec, started)
	cancel()
	now := d.p.Now()
	fin := store.DeliveryFinishParams{ID: rec.ID, Token: rec.ClaimToken, Node: d.p.Node, StartedAt: started, Now: now,
		Response: res.Response}
	switch {
	case err == nil:
		fin.State = store.DeliveryDelivered
	case errors.Is(err, channel.ErrGone):
		fin.State = store.DeliveryDisabled
	case errors.Is(err, channel.ErrPermanent) || rec.Tries()+1 >= d.p.MaxAttempts:
		fin.State = store.DeliveryFailed
	case ctx.Err() != nil:
		fin.State, fin.NextAt = store.DeliveryPending, now // this node stops: another may send it now
	default:
		fin.State, fin.NextAt = store.DeliveryPending, now.Add(d.delay(rec.Tries()+1, res.RetryAfter))
	}
	if err != nil {
		fin.Error = err.Error()
	}
	// Recorded also when this node is stopping: the attempt happened.
	out, ferr := d.record(context.WithoutCancel(ctx), fin)
	if ferr == nil && d.p.Observe != nil {
		d.p.Observe(rec.Channel, fin.State)
	}
	log := d.p.Log.With("delivery", rec.ID, "key", rec.Key(), "run", rec.RunID, "job", rec.Job, "channel", rec.Channel,
		"target", auth.RedactURL(rec.Spec.Target()), "attempt", rec.Attempts+1)
	switch {
	case errors.Is(ferr, store.ErrStale):
		log.Warn("delivery attempt ended after its claim was taken over; its outcome is not recorded", "err", err, "response", res.Response)
	case ferr != nil:
		log.Error("cannot record a delivery attempt; its claim will expire and it is sent again", "err", ferr)
	case fin.State == store.DeliveryDelivered:
		log.Info("delivered", "response", res.Response, "took", now.Sub(started).Round(time.Millisecond))
	case fin.State == store.DeliveryPending:
		log.Warn("delivery attempt failed; retrying", "err", err, "response", res.Response, "next", out.NextAt)
	default:
		log.Warn("delivery "+string(fin.State), "err", err, "response", res.Response, "attempts", out.Attempts)
	}
}

// record records one attempt's outcome. The attempts that end while another sender
// records go into one transaction together (group commit): the repository takes one
// write for many records, not one each.
func (d *Deliverer) record(ctx context.Context, p store.DeliveryFinishParams) (store.Delivery, error) {
	req := finishReq{p: p, done: make(chan store.DeliveryFinishResult, 1)}
	d.mu.Lock()
	d.queue = append(d.queue, req)
	lead := !d.flushing
	d.flushing = true
	d.mu.Unlock()
	for lead {
		d.mu.Lock()
		batch := d.queue
		d.queue = nil
		if len(batch) == 0 {
			d.flushing = false
			d.mu.Unlock()
			break
		}
		d.mu.Unlock()
		ps := make([]store.DeliveryFinishParams, len(batch))
		for i, r := range batch {
			ps[i] = r.p
		}
		res, err := d.p.Store.DeliveryFinishBatch(ctx, ps)
		for i, r := range batch {
			if err != nil {
				r.done <- store.DeliveryFinishResult{Err: err}
				continue
			}
			r.done <- res[i]
		}
	}
	r := <-req.done
	return r.Delivery, r.Err
}

// delay is the wait after failed attempt n (1 for the first): the receiver's
// Retry-After when it gave one, else Backoff × 6^(n−1) with ±20% jitter, at most
// BackoffMax either way.
func (d *Deliverer) delay(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, d.p.BackoffMax)
	}
	base := float64(d.p.Backoff) * math.Pow(BackoffFactor, float64(n-1))
	base = min(base, float64(d.p.BackoffMax))
	jittered := time.Duration(base * (0.8 + 0.4*mrand.Float64()))
	return min(jittered, d.p.BackoffMax)
}

// attempt builds the message of rec and sends it through its channel. The secrets
// its settings refer to are resolved now, for this attempt only, and what the attempt
// reports (the error, the receiver's reply) is recorded without them and without URL
// passwords and query values.
func (d *Deliverer) attempt(ctx context.Context, rec store.Delivery, now time.Time) (channel.Result, error) {
	snd, ok := d.p.Senders[rec.Channel]
	if !ok {
		return channel.Result{}, fmt.Errorf("no %q channel on this node: %w", rec.Channel, channel.ErrPermanent)
	}
	sec := auth.NewResolver(d.p.Secret)
	spec, err := resolveEntry(ctx, sec, rec.Spec)
	if err != nil {
		return channel.Result{}, sec.RedactError(err)
	}
	m, err := d.message(ctx, rec, now)
	if err != nil {
		return channel.Result{}, sec.RedactError(err)
	}
	m.Secrets = sec
	res, err := snd.Send(ctx, spec, m)
	res.Response = sec.Redact(res.Response)
	return res, sec.RedactError(err)
}

// resolveEntry returns d with the secret references of its webhook URL, secret and
// header values replaced by their values.
func resolveEntry(ctx context.Context, sec *auth.Resolver, d job.Deliver) (job.Deliver, error) {
	var errs []error
	res := func(v string) string {
		out, err := sec.Resolve(ctx, v)
		if err != nil {
			errs = append(errs, err)
		}
		return out
	}
	d.Webhook, d.Secret = res(d.Webhook), res(d.Secret)
	if len(d.Headers) > 0 {
		hs := make(map[string]string, len(d.Headers))
		for k, v := range d.Headers {
			hs[k] = res(v)
		}
		d.Headers = hs
	}
	if err := errors.Join(errs...); err != nil {
		return d, fmt.Errorf("resolve the entry's secrets: %w", err)
	}
	return d, nil
}

// message describes rec's run for its channel.
func (d *Deliverer) message(ctx context.Context, rec store.Delivery, now time.Time) (channel.Message, error) {
	if rec.Notification != 0 {
		return d.notice(ctx, rec, now)
	}
	run, err := d.p.Store.RunGet(ctx, rec.RunID)
	if err != nil {
		return channel.Message{}, fmt.Errorf("read run %d: %w", rec.RunID, err)
	}
	outs, err := d.p.Store.OutputList(ctx, rec.RunID)
	if err != nil {
		return channel.Message{}, fmt.Errorf("list outputs of run %d: %w", rec.RunID, err)
	}
	loc := time.UTC
	if j, err := d.p.Store.JobGet(ctx, rec.Job); err == nil {
		if l, err := j.Spec.Location(); err == nil {
			loc = l
		}
	}
	m := channel.Message{Key: rec.Key(), Now: now, Data: TemplateData(run, outs, loc, d.p.BaseURL, rec.Key())}
	for _, o := range outs {
		m.Files = append(m.Files, channel.File{Name: o.Name, Size: o.Size, SHA256: o.SHA256, URL: OutputURL(d.p.BaseURL, o),
			Open: func(ctx context.Context) (io.ReadCloser, error) { return d.p.Files.Open(ctx, o) }})
	}
	return m, nil
}

// notice is the message of a notification's record: the text the notifier rendered
// when it recorded the notification, and the event it is about.
func (d *Deliverer) notice(ctx context.Context, rec store.Delivery, now time.Time) (channel.Message, error) {
	n, err := d.p.Store.NotificationGet(ctx, rec.Notification)
	if err != nil {
		return channel.Message{}, fmt.Errorf("read notification %d: %w", rec.Notification, err)
	}
	ev, err := d.p.Store.EventGet(ctx, n.EventID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return channel.Message{}, fmt.Errorf("read event %d: %w", n.EventID, err)
	}
	data := ev.Data
	if data == nil {
		data = map[string]any{}
	}
	return channel.Message{Key: rec.Key(), Now: now, Notice: &channel.Notice{Notification: n.ID, Rule: n.Rule, Kind: n.Kind,
		Subject: n.Subject, Body: n.Body, Count: n.Count,
		Event: channel.NoticeEvent{ID: n.EventID, Type: n.EventType, At: ev.At, Node: ev.Node, Message: ev.Message, Data: data}}}, nil
}

// RunURL links to a run.
func RunURL(base string, id int64) string {
	return base + "/api/v1/runs/" + strconv.FormatInt(id, 10)
}

// OutputURL links to an output's download (any node redirects to its holder).
func OutputURL(base string, o store.Output) string {
	return RunURL(base, o.RunID) + "/outputs/" + (&url.URL{Path: o.Name}).EscapedPath()
}

// TemplateData is what templates see of run: times in its job's zone.
func TemplateData(run store.Run, outs []store.Output, loc *time.Location, base, key string) job.TemplateData {
	at := time.Now()
	if run.FinishedAt != nil {
		at = *run.FinishedAt
	}
	data := job.TemplateData{Job: run.Job, RunID: run.ID, DeliveryID: key, State: string(run.State), Attempt: run.Attempt,
		Reason: run.Reason, ExitCode: run.ExitCode, FinishedAt: at.In(loc).Format(time.RFC3339), URL: RunURL(base, run.ID)}
	day := at
	if run.ScheduledAt != nil {
		data.ScheduledAt = run.ScheduledAt.In(loc).Format(time.RFC3339)
		day = *run.ScheduledAt
	}
	data.Date, data.Time = day.In(loc).Format(time.DateOnly), day.In(loc).Format("150405")
	for _, o := range outs {
		data.Outputs = append(data.Outputs, job.TemplateOutput{Name: o.Name, Size: o.Size, SHA256: o.SHA256, URL: OutputURL(base, o)})
	}
	return data
}

// FileSource opens an output file wherever it is kept.
type FileSource interface {
	Open(ctx context.Context, o store.Output) (io.ReadCloser, error)
}
