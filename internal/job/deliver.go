package job

import (
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net/mail"
	"net/url"
	"path"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Channels of a [[deliver]] entry: each entry names exactly one.
const (
	ChannelEmail     = "email"
	ChannelWebhook   = "webhook"
	ChannelDirectory = "directory"
)

// When an entry is delivered ("on"): after a run that succeeded, one that failed, or
// after any run that ended having started or been canceled.
const (
	OnSuccess = "success"
	OnFailure = "failure"
	OnAlways  = "always"
)

// Defaults of a [[deliver]] entry.
const (
	DeliverSubjectDefault = `{{.Job}}: run {{.RunID}} {{.State}}`
	DeliverBodyDefault    = `Run {{.RunID}} of {{.Job}} {{.State}}{{if .ScheduledAt}} (scheduled {{.ScheduledAt}}){{end}}.
{{if .Reason}}{{.Reason}}
{{end}}{{range .Outputs}}
  {{.Name}} ({{.Size}} bytes){{if .Linked}}: {{.URL}}{{end}}{{end}}

{{.URL}}
`
	WebhookTimeoutDefault = 30 * time.Second
	WebhookTimeoutMax     = 10 * time.Minute
	// MaxAttachBytesDefault is the size of a mail's attachments, together, above which
	// the mail carries download links instead: 10 MiB.
	MaxAttachBytesDefault = 10 << 20
	// The Standard Webhooks headers a webhook entry's POST carries.
	HeaderWebhookIDName        = "webhook-id"
	HeaderWebhookTimestampName = "webhook-timestamp"
	HeaderWebhookSignatureName = "webhook-signature"
	// WebhookSecretPrefix starts a Standard Webhooks secret; base64 of the key follows.
	WebhookSecretPrefix = "whsec_"
)

// Deliver is one distribution target for a run's outputs: exactly one of Email,
// Webhook and Directory, with the settings of that channel.
type Deliver struct {
	// Email: the recipients (To), each an address net/mail accepts.
	Email []string `json:"email,omitempty" toml:"email"`
	CC    []string `json:"cc,omitempty" toml:"cc"`
	BCC   []string `json:"bcc,omitempty" toml:"bcc"`
	// Subject and Body are text/template over TemplateData. Defaults
	// DeliverSubjectDefault and DeliverBodyDefault.
	Subject string `json:"subject,omitempty" toml:"subject"`
	Body    string `json:"body,omitempty" toml:"body"`
	// Attach selects the outputs attached (path.Match globs on the output's name;
	// default all). Above MaxAttachBytes together, the mail carries links instead.
	Attach         []string `json:"attach,omitempty" toml:"attach"`
	MaxAttachBytes int64    `json:"max_attach_bytes,omitempty" toml:"max_attach_bytes"`

	// Webhook: an http:// or https:// URL a signed JSON POST goes to.
	Webhook string `json:"webhook,omitempty" toml:"webhook"`
	// Secret signs the webhook (Standard Webhooks): "whsec_" and base64, or a
	// {{secret "NAME"}} reference to one.
	Secret string `json:"secret,omitempty" toml:"secret"`
	// Headers are sent with the POST (an Authorization for the receiver, say); values
	// may refer to secrets. The Standard Webhooks headers and Content-Type are tandem's.
	Headers map[string]string `json:"headers,omitempty" toml:"headers"`
	// IncludeFiles sends the outputs in the POST too (multipart/form-data).
	IncludeFiles bool `json:"include_files,omitempty" toml:"include_files"`
	// Timeout bounds one request. Default 30s.
	Timeout Duration `json:"timeout,omitempty" toml:"timeout"`

	// Directory: the outputs are copied into this path, a text/template over
	// TemplateData that must give an absolute path.
	Directory string `json:"directory,omitempty" toml:"directory"`
	// Overwrite replaces files of the same name. Default true; false refuses to.
	Overwrite *bool `json:"overwrite,omitempty" toml:"overwrite"`

	// On: after which runs: "success" (the default), "failure", "always".
	On []string `json:"on,omitempty" toml:"on"`
}

// Channel names the entry's channel ("" when it names none).
func (d *Deliver) Channel() string {
	switch {
	case len(d.Email) > 0:
		return ChannelEmail
	case d.Webhook != "":
		return ChannelWebhook
	case d.Directory != "":
		return ChannelDirectory
	}
	return ""
}

// Target says where the entry delivers to, for listings, logs and events: a webhook's
// URL without its password and query values.
func (d *Deliver) Target() string {
	switch d.Channel() {
	case ChannelEmail:
		return strings.Join(d.Email, ", ")
	case ChannelWebhook:
		return RedactURL(d.Webhook)
	}
	return d.Directory
}

// Default fills the optional fields left empty, except Subject and Body, whose
// defaults (long templates) are applied when a mail is made.
func (d *Deliver) Default() {
	if len(d.On) == 0 {
		d.On = []string{OnSuccess}
	}
	switch d.Channel() {
	case ChannelEmail:
		if d.MaxAttachBytes == 0 {
			d.MaxAttachBytes = MaxAttachBytesDefault
		}
	case ChannelWebhook:
		if d.Timeout == 0 {
			d.Timeout = Duration(WebhookTimeoutDefault)
		}
	case ChannelDirectory:
		if d.Overwrite == nil {
			t := true
			d.Overwrite = &t
		}
	}
}

// States returns the final run states ("succeeded", "failed", "canceled") after which
// the entry is delivered.
func (d *Deliver) States() []string {
	var out []string
	add := func(s ...string) {
		for _, x := range s {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	for _, on := range d.On {
		switch on {
		case OnSuccess:
			add("succeeded")
		case OnFailure:
			add("failed")
		case OnAlways:
			add("succeeded", "failed", "canceled")
		}
	}
	if len(d.On) == 0 {
		add("succeeded")
	}
	return out
}

// Wants reports whether the output named name is selected by Attach.
func (d *Deliver) Wants(name string) bool {
	if len(d.Attach) == 0 {
		return true
	}
	for _, g := range d.Attach {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
		if ok, _ := path.Match(g, path.Base(name)); ok {
			return true
		}
	}
	return false
}

// CheckHeader refuses a header name that is not one, and the headers a webhook sets
// itself.
func CheckHeader(name string) error {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r)
	}) {
		return fmt.Errorf("%q is not an HTTP header name", name)
	}
	switch strings.ToLower(name) {
	case HeaderWebhookIDName, HeaderWebhookTimestampName, HeaderWebhookSignatureName, "content-type", "content-length", "host":
		return fmt.Errorf("%s is set by tandem", name)
	}
	return nil
}

// SecretKey returns the key a webhook secret encodes.
func SecretKey(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, WebhookSecretPrefix)
	if !ok {
		return nil, fmt.Errorf("does not start with %q", WebhookSecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("the part after %q is not base64: %v", WebhookSecretPrefix, err)
	}
	if len(key) < 16 || len(key) > 64 {
		return nil, fmt.Errorf("the key is %d bytes; give 16 to 64", len(key))
	}
	return key, nil
}

// TemplateData is what an entry's templates (subject, body, directory) see of a run.
type TemplateData struct {
	Job         string
	RunID       int64
	DeliveryID  string
	State       string // succeeded, failed, canceled
	Attempt     int
	Reason      string
	ExitCode    *int
	ScheduledAt string // RFC 3339 in the job's zone; "" for on-demand runs
	FinishedAt  string // RFC 3339 in the job's zone
	// Date is the day of the run (scheduled, else finished) in the job's zone, 2006-01-02;
	// Time its time of day, 150405.
	Date    string
	Time    string
	URL     string // the run in the API
	Outputs []TemplateOutput
}

// TemplateOutput is one output of the run as templates see it.
type TemplateOutput struct {
	Name   string
	Size   int64
	SHA256 string
	URL    string // its download
	Linked bool   // a mail carries its link rather than the file
}

// sampleData stands in for a run when templates are checked at apply time.
func sampleData() TemplateData {
	code := 0
	return TemplateData{Job: "job", RunID: 1, DeliveryID: "dlv_1", State: "succeeded", Attempt: 1, ExitCode: &code,
		ScheduledAt: "2026-01-02T03:04:05Z", FinishedAt: "2026-01-02T03:04:06Z", Date: "2026-01-02", Time: "030405",
		URL:     "http://127.0.0.1:8200/api/v1/runs/1",
		Outputs: []TemplateOutput{{Name: "report.csv", Size: 1, SHA256: "00", URL: "http://127.0.0.1:8200/api/v1/runs/1/outputs/report.csv"}}}
}

// ParseTemplate parses an entry's template text. Unknown fields are errors when the
// template runs (missingkey=error, and struct fields are checked by text/template).
func ParseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Parse(text)
}

// checkTemplate parses text and runs it once over sample data, so that a field that
// does not exist is refused when the job is applied, not when a run ends.
func checkTemplate(field, text string) error {
	t, err := ParseTemplate(field, text)
	if err == nil {
		err = t.Execute(io.Discard, sampleData())
	}
	if err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

// validateDeliver checks entry i.
func (d *Deliver) validate(i int) error {
	f := func(name string) string { return fmt.Sprintf("deliver[%d].%s", i, name) }
	var given []string
	if len(d.Email) > 0 {
		given = append(given, ChannelEmail)
	}
	if d.Webhook != "" {
		given = append(given, ChannelWebhook)
	}
	if d.Directory != "" {
		given = append(given, ChannelDirectory)
	}
	switch {
	case len(given) == 0:
		return invalid(fmt.Sprintf("deliver[%d]", i), "empty: give email, webhook or directory")
	case len(given) > 1:
		return invalid(f(given[1]), "an entry has one channel: give email, webhook or directory, not both %s and %s (use another [[deliver]])", given[0], given[1])
	}
	for _, on := range d.On {
		if !slices.Contains([]string{OnSuccess, OnFailure, OnAlways}, on) {
			return invalid(f("on"), "%q is not allowed (success, failure, always)", on)
		}
	}
	ch := given[0]
	// Settings of another channel are mistakes: say so rather than ignore them.
	other := map[string][]string{
		ChannelEmail:     {"webhook", "secret", "headers", "include_files", "timeout", "directory", "overwrite"},
		ChannelWebhook:   {"email", "cc", "bcc", "subject", "body", "attach", "max_attach_bytes", "directory", "overwrite"},
		ChannelDirectory: {"email", "cc", "bcc", "subject", "body", "max_attach_bytes", "webhook", "secret", "headers", "include_files", "timeout"},
	}
	set := map[string]bool{"cc": len(d.CC) > 0, "bcc": len(d.BCC) > 0, "subject": d.Subject != "", "body": d.Body != "",
		"attach": len(d.Attach) > 0, "max_attach_bytes": d.MaxAttachBytes != 0, "secret": d.Secret != "", "headers": len(d.Headers) > 0,
		"include_files": d.IncludeFiles, "timeout": d.Timeout != 0, "overwrite": d.Overwrite != nil}
	for _, k := range other[ch] {
		if set[k] {
			return invalid(f(k), "is not a setting of %s entries", ch)
		}
	}
	for _, g := range d.Attach {
		if _, err := path.Match(g, ""); err != nil {
			return invalid(f("attach"), "%q is not a glob pattern: %v", g, err)
		}
	}
	switch ch {
	case ChannelEmail:
		for _, list := range []struct {
			name  string
			addrs []string
		}{{"email", d.Email}, {"cc", d.CC}, {"bcc", d.BCC}} {
			for k, addr := range list.addrs {
				if a, err := mail.ParseAddress(addr); err != nil || !strings.Contains(a.Address, "@") {
					return invalid(fmt.Sprintf("deliver[%d].%s[%d]", i, list.name, k), "%q is not an email address (e.g. \"sales-leads@example.com\")", addr)
				}
			}
		}
		if d.MaxAttachBytes < 0 {
			return invalid(f("max_attach_bytes"), "must not be negative, got %d", d.MaxAttachBytes)
		}
		if d.Subject != "" {
			if err := checkTemplate(f("subject"), d.Subject); err != nil {
				return err
			}
		}
		if d.Body != "" {
			if err := checkTemplate(f("body"), d.Body); err != nil {
				return err
			}
		}
	case ChannelWebhook:
		u, err := url.Parse(withoutSecretRefs(d.Webhook))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid(f("webhook"), "%q is not an http:// or https:// URL", d.Webhook)
		}
		// A reference is checked when it is resolved, at send time.
		if d.Secret != "" && !SecretRef.MatchString(d.Secret) {
			if _, err := SecretKey(d.Secret); err != nil {
				return invalid(f("secret"), "not a Standard Webhooks secret (\"whsec_\" and base64 of 16 to 64 random bytes), nor a {{secret \"NAME\"}} reference: %v", err)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(d.Headers)) {
			if err := CheckHeader(k); err != nil {
				return invalid(f("headers."+k), "%v", err)
			}
		}
		if d.Timeout < 0 || d.Timeout.D() > WebhookTimeoutMax {
			return invalid(f("timeout"), "must be between 0s (the default, %s) and %s, got %s", WebhookTimeoutDefault, WebhookTimeoutMax, d.Timeout)
		}
	case ChannelDirectory:
		if err := checkTemplate(f("directory"), d.Directory); err != nil {
			return err
		}
		if !strings.HasPrefix(d.Directory, "/") {
			return invalid(f("directory"), "%q is not an absolute path (e.g. \"/srv/reports/{{.Job}}/{{.Date}}\")", d.Directory)
		}
	}
	return nil
}
