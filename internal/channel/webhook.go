package channel

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// Standard Webhooks headers.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// RetryAfterMax caps a receiver's Retry-After.
const RetryAfterMax = 24 * time.Hour

// Webhook POSTs a JSON description of the run (and with include_files, its outputs, as
// multipart/form-data), signed per the Standard Webhooks specification.
type Webhook struct {
	Client *http.Client // nil: one that follows no redirects
}

// WebhookPayload is the JSON body: Standard Webhooks' envelope of type, timestamp and
// data.
type WebhookPayload struct {
	Type      string      `json:"type"` // run.succeeded, run.failed, run.canceled
	Timestamp time.Time   `json:"timestamp"`
	Data      WebhookData `json:"data"`
}

// WebhookData describes the run and its outputs.
type WebhookData struct {
	Delivery    string          `json:"delivery"` // the idempotency key, = webhook-id
	Run         int64           `json:"run"`
	Job         string          `json:"job"`
	State       string          `json:"state"`
	Attempt     int             `json:"attempt"`
	ExitCode    *int            `json:"exit_code"`
	Reason      string          `json:"reason"`
	ScheduledAt string          `json:"scheduled_at,omitempty"`
	FinishedAt  string          `json:"finished_at"`
	URL         string          `json:"url"`
	Outputs     []WebhookOutput `json:"outputs"`
}

// WebhookOutput is one output file.
type WebhookOutput struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	URL    string `json:"url"`
}

// Payload builds the JSON body of message m.
func Payload(m Message) WebhookPayload {
	d := m.Data
	p := WebhookPayload{Type: "run." + d.State, Timestamp: m.Now.UTC().Truncate(time.Second), Data: WebhookData{
		Delivery: m.Key, Run: d.RunID, Job: d.Job, State: d.State, Attempt: d.Attempt, ExitCode: d.ExitCode,
		Reason: d.Reason, ScheduledAt: d.ScheduledAt, FinishedAt: d.FinishedAt, URL: d.URL, Outputs: []WebhookOutput{}}}
	for _, o := range d.Outputs {
		p.Data.Outputs = append(p.Data.Outputs, WebhookOutput{Name: o.Name, Size: o.Size, SHA256: o.SHA256, URL: o.URL})
	}
	return p
}

// NoticeWebhookPayload is the JSON body of a rule's notification: Standard Webhooks'
// envelope whose type is the event's ("node.lost"), or "tandem.digest" for a digest.
type NoticeWebhookPayload struct {
	Type      string            `json:"type"`
	Timestamp time.Time         `json:"timestamp"`
	Data      NoticeWebhookData `json:"data"`
}

// NoticeWebhookData describes the notification and its event.
type NoticeWebhookData struct {
	Delivery     string      `json:"delivery"` // the idempotency key, = webhook-id
	Notification int64       `json:"notification"`
	Rule         string      `json:"rule"`
	Kind         string      `json:"kind"` // notice or digest
	Subject      string      `json:"subject"`
	Body         string      `json:"body"`
	Count        int         `json:"count"` // digest: events summed up; 1 for a notice
	Event        NoticeEvent `json:"event"`
}

// NoticePayload builds the JSON body of a notification message.
func NoticePayload(m Message) NoticeWebhookPayload {
	n := m.Notice
	typ := n.Event.Type
	if n.Kind == "digest" {
		typ = "tandem.digest"
	}
	return NoticeWebhookPayload{Type: typ, Timestamp: m.Now.UTC().Truncate(time.Second), Data: NoticeWebhookData{
		Delivery: m.Key, Notification: n.Notification, Rule: n.Rule, Kind: n.Kind, Subject: n.Subject, Body: n.Body,
		Count: max(n.Count, 1), Event: n.Event}}
}

// Sign returns the webhook-signature value for a message id, timestamp and body:
// "v1," and the base64 HMAC-SHA256 of "id.timestamp.body" under the secret's key.
func Sign(secret, id string, ts int64, body []byte) (string, error) {
	key, err := job.SecretKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, ts)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Send implements Sender.
func (w *Webhook) Send(ctx context.Context, d job.Deliver, m Message) (Result, error) {
	d.Default()
	var payload []byte
	var err error
	if m.Notice != nil {
		payload, err = json.Marshal(NoticePayload(m))
	} else {
		payload, err = json.Marshal(Payload(m))
	}
	if err != nil {
		return Result{}, fmt.Errorf("encode payload: %w", err)
	}
	body, ctype := payload, "application/json"
	if d.IncludeFiles {
		if body, ctype, err = multipartBody(ctx, payload, selected(d, m.Files)); err != nil {
			return Result{}, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(d.Timeout.D(), job.WebhookTimeoutDefault))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Webhook, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("webhook %s: %v: %w", d.Webhook, err, ErrPermanent)
	}
	ts := m.Now.Unix()
	for k, v := range d.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "tandem")
	req.Header.Set(HeaderWebhookID, m.Key)
	req.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
	if d.Secret != "" {
		sig, err := Sign(d.Secret, m.Key, ts, body)
		if err != nil {
			return Result{}, fmt.Errorf("sign: %v: %w", err, ErrPermanent)
		}
		req.Header.Set(HeaderWebhookSignature, sig)
	}
	resp, err := w.client().Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("webhook %s: %w", d.Webhook, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused
	r := Result{Response: "HTTP " + resp.Status}
	if s := strings.TrimSpace(string(snippet)); s != "" {
		r.Response += ": " + s
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return r, nil
	case code == http.StatusGone:
		return r, fmt.Errorf("webhook %s answered %s: %w", d.Webhook, resp.Status, ErrGone)
	case code == http.StatusTooManyRequests || code >= 500:
		r.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), m.Now)
	}
	return r, fmt.Errorf("webhook %s answered %s", d.Webhook, resp.Status)
}

func (w *Webhook) client() *http.Client {
	if w.Client != nil {
		return w.Client
	}
	// A redirect is not a delivery: the receiver's answer is the status itself.
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), RetryAfterMax)
}

// multipartBody is a multipart/form-data body: the JSON as part "payload", then each
// file as part "file" with its name. The whole body is what is signed.
func multipartBody(ctx context.Context, payload []byte, files []File) ([]byte, string, error) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="payload"`)
	h.Set("Content-Type", "application/json")
	pw, err := mw.CreatePart(h)
	if err == nil {
		_, err = pw.Write(payload)
	}
	if err != nil {
		return nil, "", fmt.Errorf("build multipart body: %w", err)
	}
	for _, f := range files {
		data, err := readAll(ctx, f)
		if err != nil {
			return nil, "", err
		}
		fw, err := mw.CreateFormFile("file", f.Name)
		if err == nil {
			_, err = fw.Write(data)
		}
		if err != nil {
			return nil, "", fmt.Errorf("build multipart body: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", fmt.Errorf("build multipart body: %w", err)
	}
	return b.Bytes(), mw.FormDataContentType(), nil
}
