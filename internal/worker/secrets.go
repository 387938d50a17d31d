package worker

import (
	"context"
	"maps"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/job"
)

// resolveSecrets returns spec with every {{secret "NAME"}} of the fields that may carry
// secrets (command.env values, http.url, http.headers values, http.body) replaced by the
// secret's value, read now, on this worker; seen gets each value put in, for redaction.
func (w *Worker) resolveSecrets(ctx context.Context, spec job.Spec, seen map[string]string) (job.Spec, error) {
	lookup := func(name string) (string, error) {
		if w.p.Secret == nil {
			return "", auth.ErrNoSecretKey
		}
		return w.p.Secret(ctx, name)
	}
	var errs error
	res := func(v string) string {
		if !auth.HasSecretRef(v) {
			return v
		}
		out, err := auth.ResolveSecrets(v, lookup, seen)
		if err != nil {
			errs = err
		}
		return out
	}
	if c := spec.Command; c != nil && len(c.Env) > 0 {
		cc := *c
		cc.Env = maps.Clone(c.Env)
		for k, v := range cc.Env {
			cc.Env[k] = res(v)
		}
		spec.Command = &cc
	}
	if h := spec.HTTP; h != nil {
		hh := *h
		hh.URL, hh.Body = res(h.URL), res(h.Body)
		hh.Headers = maps.Clone(h.Headers)
		for k, v := range hh.Headers {
			hh.Headers[k] = res(v)
		}
		spec.HTTP = &hh
	}
	return spec, errs
}

// redact hides, in what a run reports (its reason, stdout, stderr), the secret values it
// was given and the passwords and query values of URLs.
func redact(s string, seen map[string]string) string {
	return auth.Redact(s, seen)
}

// redactBytes is redact for captured output; URLs in a job's own output are its own
// business, its secrets are not.
func redactBytes(b []byte, seen map[string]string) []byte {
	if len(seen) == 0 {
		return b
	}
	return []byte(auth.RedactSecrets(string(b), seen))
}
