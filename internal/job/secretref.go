package job

import "regexp"

// SecretRef matches a reference to a secret in a job field, {{secret "NAME"}}; the
// worker replaces it by the secret's value when the run starts.
var SecretRef = regexp.MustCompile(`\{\{\s*secret\s+"([A-Za-z0-9_.-]{1,100})"\s*\}\}`)

// withoutSecretRefs stands a plain word in for each secret reference, so a field is
// checked for what it will be, not for the braces of the reference.
func withoutSecretRefs(v string) string { return SecretRef.ReplaceAllString(v, "secret") }

// WithoutSecretRefs is withoutSecretRefs for other packages' fields (rules' webhooks).
func WithoutSecretRefs(v string) string { return withoutSecretRefs(v) }
