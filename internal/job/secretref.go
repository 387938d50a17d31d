package job

import (
	"regexp"
	"strings"
)

// SecretRef matches a reference to a secret in a job field, {{secret "NAME"}}; the
// worker replaces it by the secret's value when the run starts.
var SecretRef = regexp.MustCompile(`\{\{\s*secret\s+"([A-Za-z0-9_.-]{1,100})"\s*\}\}`)

// withoutSecretRefs stands a plain word in for each secret reference, so a field is
// checked for what it will be, not for the braces of the reference.
func withoutSecretRefs(v string) string { return SecretRef.ReplaceAllString(v, "secret") }

// WithoutSecretRefs is withoutSecretRefs for other packages' fields (rules' webhooks).
func WithoutSecretRefs(v string) string { return withoutSecretRefs(v) }

// RedactURL hides the password of u's userinfo and the values of its query.
func RedactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
		if user, _, has := strings.Cut(rest[:at], ":"); has {
			rest = user + ":***" + rest[at:]
		}
	}
	if path, q, has := strings.Cut(rest, "?"); has {
		parts := strings.Split(q, "&")
		for i, p := range parts {
			if k, _, kv := strings.Cut(p, "="); kv {
				parts[i] = k + "=***"
			}
		}
		rest = path + "?" + strings.Join(parts, "&")
	}
	return scheme + "://" + rest
}
