// Package channel sends one message about a run through one channel: email (SMTP),
// webhook (a Standard Webhooks signed POST) or directory (files copied into a path). A
// channel makes one attempt and says how it went; whether and when to try again is the
// caller's (internal/deliver), guided by the error: ErrPermanent and ErrGone mean
// another attempt cannot help, Result.RetryAfter is what the receiver asked for.
//
// Every attempt of one delivery carries the same Message.Key (the webhook-id, the root
// of the mail's Message-ID, part of a directory's temporary names), so a receiver can
// tell a repeated delivery from a new one.
package channel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// Errors a Send wraps when retrying cannot help.
var (
	// ErrPermanent: the channel refused the message for good (an SMTP 5xx reply, a file
	// that exists with overwrite off, a template that fails on this run).
	ErrPermanent = errors.New("permanent failure")
	// ErrGone: the receiver asked for no more deliveries (HTTP 410 Gone).
	ErrGone = errors.New("the receiver is gone")
)

// Message is one delivery of one run.
type Message struct {
	Key   string // the delivery's idempotency key
	Data  job.TemplateData
	Files []File // the run's outputs
	Now   time.Time
	// Notice, when set, makes the message a rule's notification about an event instead
	// of a run's delivery: its subject and body were rendered by the notifier, and Data
	// and Files are empty.
	Notice *Notice
	// Secrets resolves the {{secret "NAME"}} references of the channel's own settings
	// (the SMTP password) for this attempt; nil: none can be resolved. The entry's
	// references are resolved by the caller before Send.
	Secrets Secrets
}

// Secrets resolves secret references at send time and remembers the values, so that
// the caller can hide them in what the attempt reports (auth.Resolver).
type Secrets interface {
	Resolve(ctx context.Context, v string) (string, error)
}

// Notice is one notification of an event rule (internal/notify), as rendered when the
// notifier recorded it: every attempt sends the same text under the same key.
type Notice struct {
	Notification int64
	Rule         string
	Kind         string // "notice", or "digest" for a summary of suppressed repeats
	Subject      string
	Body         string
	Count        int // digest: how many events it sums up
	Event        NoticeEvent
}

// NoticeEvent is the event a notice is about (a digest: the last one it sums up).
type NoticeEvent struct {
	ID      int64          `json:"id"`
	Type    string         `json:"type"`
	At      time.Time      `json:"at"`
	Node    string         `json:"node"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data"`
}

// File is one output of the run; Open reads it (from this node's disk or its holder).
type File struct {
	Name   string
	Size   int64
	SHA256 string
	URL    string
	Open   func(ctx context.Context) (io.ReadCloser, error)
}

// Result is what the channel answered.
type Result struct {
	Response   string        // an SMTP reply, an HTTP status line, the files written
	RetryAfter time.Duration // the receiver's Retry-After, 0 when none
}

// Sender sends messages through one channel. Send makes one attempt, bounded by ctx.
type Sender interface {
	Send(ctx context.Context, d job.Deliver, m Message) (Result, error)
}

// render runs an entry's template over the message's data; an error is permanent (the
// template was checked at apply time against sample data, so this run's data is to blame).
func render(field, text string, data job.TemplateData) (string, error) {
	t, err := job.ParseTemplate(field, text)
	if err != nil {
		return "", fmt.Errorf("%s: %v: %w", field, err, ErrPermanent)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("%s: %v: %w", field, err, ErrPermanent)
	}
	return b.String(), nil
}

// selected returns the files the entry's attach globs select.
func selected(d job.Deliver, files []File) []File {
	var out []File
	for _, f := range files {
		if d.Wants(f.Name) {
			out = append(out, f)
		}
	}
	return out
}

// readAll reads a file whole, checking it is the size the repository recorded.
func readAll(ctx context.Context, f File) ([]byte, error) {
	rc, err := f.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("open output %s: %w", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read output %s: %w", f.Name, err)
	}
	if int64(len(b)) != f.Size {
		return nil, fmt.Errorf("read output %s: %d bytes, the run recorded %d", f.Name, len(b), f.Size)
	}
	if sum := sha256.Sum256(b); f.SHA256 != "" && hex.EncodeToString(sum[:]) != f.SHA256 {
		return nil, fmt.Errorf("read output %s: its SHA-256 is not the one the run recorded", f.Name)
	}
	return b, nil
}
