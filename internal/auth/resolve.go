package auth

import (
	"context"
	"sync"
)

// Resolver resolves the {{secret "NAME"}} references of one use of secrets (a delivery's
// attempt: its channel settings, the SMTP password) and remembers each value it put in,
// so that what that use reports (an error, a receiver's reply) can be shown without
// them. Safe for concurrent use; the zero of *Resolver (nil) resolves nothing and
// refuses a reference.
type Resolver struct {
	lookup func(ctx context.Context, name string) (string, error)

	mu   sync.Mutex
	seen map[string]string // name → value put in
}

// NewResolver returns a resolver reading values with lookup (nil: this node cannot
// resolve secrets, and a reference is an error saying so).
func NewResolver(lookup func(ctx context.Context, name string) (string, error)) *Resolver {
	return &Resolver{lookup: lookup, seen: map[string]string{}}
}

// Resolve returns v with each reference replaced by its secret's value; a value with
// no reference is returned as it is.
func (r *Resolver) Resolve(ctx context.Context, v string) (string, error) {
	if !HasSecretRef(v) {
		return v, nil
	}
	if r == nil || r.lookup == nil {
		return v, ErrNoSecretKey
	}
	seen := map[string]string{}
	out, err := ResolveSecrets(v, func(name string) (string, error) { return r.lookup(ctx, name) }, seen)
	r.mu.Lock()
	for k, val := range seen {
		r.seen[k] = val
	}
	r.mu.Unlock()
	return out, err
}

// Redact hides in s the values this resolver put in («secret NAME») and the passwords
// and query values of URLs.
func (r *Resolver) Redact(s string) string {
	if r == nil {
		return RedactURLs(s)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return Redact(s, r.seen)
}

// RedactError is err with its message redacted by r; errors.Is and As still see err.
func (r *Resolver) RedactError(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: r.Redact(err.Error()), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
