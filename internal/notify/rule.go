package notify

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/tandemhq/tandem/internal/job"
)

// Spec is one [[rule]] of a rule file, stored as JSON.
type Spec struct {
	// Name identifies the rule: letters, digits, '.', '_' and '-', at most 64.
	Name string `json:"name" toml:"name"`
	// On lists the event types the rule judges (Schema); at least one.
	On []string `json:"on" toml:"on"`
	// When is an optional condition (expr-lang) over the event: id, type, node, by, at,
	// message and data.FIELD of the types in On. It must give a bool.
	When string `json:"when,omitempty" toml:"when"`
	// Repeat suppresses the same (rule, key) for this long after a notice; the repeats
	// are summed up in one digest once it has passed. Default 0: no suppression.
	Repeat job.Duration `json:"repeat,omitempty" toml:"repeat"`
	// Key is a text/template over the event saying what "the same" means; default
	// "{{.Type}}".
	Key string `json:"key,omitempty" toml:"key"`
	// Email and Webhook are the channels; a rule with neither only records its
	// notifications.
	Email   *EmailSpec   `json:"email,omitempty" toml:"email"`
	Webhook *WebhookSpec `json:"webhook,omitempty" toml:"webhook"`
}

// EmailSpec sends a notice by mail through the server's [smtp].
type EmailSpec struct {
	To  []string `json:"to" toml:"to"`
	CC  []string `json:"cc,omitempty" toml:"cc"`
	BCC []string `json:"bcc,omitempty" toml:"bcc"`
	// Subject and Body are text/template over the event (Template). Defaults
	// SubjectDefault and BodyDefault.
	Subject string `json:"subject,omitempty" toml:"subject"`
	Body    string `json:"body,omitempty" toml:"body"`
}

// WebhookSpec POSTs a notice, signed per Standard Webhooks when Secret is set.
type WebhookSpec struct {
	URL     string       `json:"url" toml:"url"`
	Secret  string       `json:"secret,omitempty" toml:"secret"`
	Timeout job.Duration `json:"timeout,omitempty" toml:"timeout"`
	// Headers are sent with the POST. URL, Secret and header values may refer to
	// secrets ({{secret "NAME"}}), resolved by the node that sends.
	Headers map[string]string `json:"headers,omitempty" toml:"headers"`
}

// Template defaults.
const (
	KeyDefault     = "{{.Type}}"
	SubjectDefault = "tandem: {{.Type}} on {{.Node}}"
	BodyDefault    = "{{.Message}}\n\nevent {{.ID}} ({{.Type}}) at {{.At}}, recorded by {{.By}}\nrule {{.Rule}}\n"
)

// File is a rule file: [[rule]] tables.
type File struct {
	Rule []Spec `toml:"rule"`
}

// Problem is what is wrong with one field of a rule file.
type Problem struct {
	Field   string // rule[0].when
	Problem string
}

// Problems are all that is wrong with a rule file.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Field + ": " + p.Problem
	}
	return strings.Join(lines, "\n")
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Parse reads a rule file and checks every rule (Compile), reporting every problem with
// its field named.
func Parse(data []byte) ([]Spec, error) {
	var f File
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, fmt.Errorf("parse rule file: %w", err)
	}
	var ps Problems
	for _, k := range md.Undecoded() {
		ps = append(ps, Problem{k.String(), "unknown field"})
	}
	if len(f.Rule) == 0 && len(ps) == 0 {
		ps = append(ps, Problem{"rule", "no [[rule]] in the file"})
	}
	seen := map[string]bool{}
	for i, s := range f.Rule {
		if _, err := Compile(s); err != nil {
			var sub Problems
			if errors.As(err, &sub) {
				for _, p := range sub {
					ps = append(ps, Problem{fmt.Sprintf("rule[%d].%s", i, p.Field), p.Problem})
				}
			} else {
				ps = append(ps, Problem{fmt.Sprintf("rule[%d]", i), err.Error()})
			}
		}
		if seen[s.Name] {
			ps = append(ps, Problem{fmt.Sprintf("rule[%d].name", i), fmt.Sprintf("%q appears twice", s.Name)})
		}
		seen[s.Name] = true
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return f.Rule, nil
}

// Rule is a compiled rule, ready to judge events.
type Rule struct {
	Spec       Spec
	SinceEvent int64
	env        reflect.Type
	when       *vm.Program
	key        *template.Template
	subject    *template.Template
	body       *template.Template
}

// Compile checks a rule and compiles its condition (type-checked against the schema of
// its event types) and templates. Errors are Problems naming the field.
func Compile(s Spec) (*Rule, error) {
	var ps Problems
	bad := func(field, format string, args ...any) { ps = append(ps, Problem{field, fmt.Sprintf(format, args...)}) }
	if !nameRE.MatchString(s.Name) {
		bad("name", "%q is not a rule name (letters, digits, '.', '_', '-'; at most 64)", s.Name)
	}
	if len(s.On) == 0 {
		bad("on", "name at least one event type (%s)", strings.Join(TypeNames(), ", "))
	}
	for i, t := range s.On {
		if _, ok := eventType(t); !ok {
			bad(fmt.Sprintf("on[%d]", i), "%q is not an event type (%s)", t, strings.Join(TypeNames(), ", "))
		}
	}
	if s.Repeat < 0 {
		bad("repeat", "must not be negative")
	}
	r := &Rule{Spec: s}
	if len(ps) == 0 {
		t, err := envType(s.On)
		if err != nil {
			bad("on", "%v", err)
		} else {
			r.env = t
		}
	}
	if s.When != "" && r.env != nil {
		prog, err := expr.Compile(s.When, expr.Env(envValue(r.env, Event{}).Interface()), expr.AsBool())
		if err != nil {
			bad("when", "%s", conditionError(err, r.env))
		}
		r.when = prog
	}
	var err error
	if r.key, err = parseTemplate("key", cmp.Or(s.Key, KeyDefault)); err != nil {
		bad("key", "%v", err)
	}
	if e := s.Email; e != nil {
		if len(e.To)+len(e.CC)+len(e.BCC) == 0 {
			bad("email.to", "name at least one recipient")
		}
		for field, addrs := range map[string][]string{"email.to": e.To, "email.cc": e.CC, "email.bcc": e.BCC} {
			for i, a := range addrs {
				if _, err := mail.ParseAddress(a); err != nil {
					bad(fmt.Sprintf("%s[%d]", field, i), "%q is not an email address: %v", a, err)
				}
			}
		}
		if r.subject, err = parseTemplate("subject", cmp.Or(e.Subject, SubjectDefault)); err != nil {
			bad("email.subject", "%v", err)
		}
		if r.body, err = parseTemplate("body", cmp.Or(e.Body, BodyDefault)); err != nil {
			bad("email.body", "%v", err)
		}
	} else {
		r.subject, _ = parseTemplate("subject", SubjectDefault)
		r.body, _ = parseTemplate("body", BodyDefault)
	}
	if w := s.Webhook; w != nil {
		u, err := url.Parse(job.WithoutSecretRefs(w.URL))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("webhook.url", "%q is not an http:// or https:// URL", w.URL)
		}
		for k := range w.Headers {
			if err := job.CheckHeader(k); err != nil {
				bad("webhook.headers."+k, "%v", err)
			}
		}
		if w.Secret != "" && !job.SecretRef.MatchString(w.Secret) {
			if _, err := job.SecretKey(w.Secret); err != nil {
				bad("webhook.secret", "%v", err)
			}
		}
	}
	if len(ps) > 0 {
		slices.SortStableFunc(ps, func(a, b Problem) int { return strings.Compare(a.Field, b.Field) })
		return nil, ps
	}
	// Templates run over a sample of every type, so one that fails on a field the
	// events have is refused now rather than when it matters.
	for _, t := range s.On {
		sample := Template{Event: Event{ID: 1, Type: t, Node: "node", By: "node", At: time.Unix(0, 0), Message: "m", Data: map[string]any{}}, Rule: s.Name}
		for field, tm := range map[string]*template.Template{"key": r.key, "email.subject": r.subject, "email.body": r.body} {
			if err := tm.Execute(&bytes.Buffer{}, sample.data()); err != nil {
				bad(field, "%v", err)
			}
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return r, nil
}

var noFieldRE = regexp.MustCompile(`has no field (\S+) \((\d+:\d+)\)`)

// conditionError is expr's message on one line; an unknown field of data is named
// with the fields there are.
func conditionError(err error, env reflect.Type) string {
	msg := err.Error()
	if i := strings.Index(msg, "\n"); i >= 0 {
		msg = msg[:i]
	}
	if m := noFieldRE.FindStringSubmatch(msg); m != nil {
		var have []string
		if f, ok := env.FieldByName("Data"); ok {
			for i := range f.Type.NumField() {
				have = append(have, f.Type.Field(i).Tag.Get("expr"))
			}
		}
		return fmt.Sprintf("unknown field data.%s at %s (data has: %s)", m[1], m[2], strings.Join(have, ", "))
	}
	return msg
}

func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=zero").Parse(text)
}

// Template is what key, subject and body templates see: .ID, .Type, .Node (the node
// the event is about), .By (the node that recorded it), .At (RFC 3339 UTC), .Message,
// .Data (the event's data: {{.Data.job}}) and .Rule.
type Template struct {
	Event
	Rule string
}

type templateData struct {
	ID      int64
	Type    string
	Node    string
	By      string
	At      string
	Message string
	Data    map[string]any
	Rule    string
}

func (t Template) data() templateData {
	d := t.Event.Data
	if d == nil {
		d = map[string]any{}
	}
	return templateData{ID: t.ID, Type: t.Type, Node: t.Node, By: t.By, At: t.At.UTC().Format(time.RFC3339), Message: t.Message, Data: d, Rule: t.Rule}
}

// Encode is the JSON a rule is stored as.
func (s Spec) Encode() ([]byte, error) { return json.Marshal(s) }

// Decode reads a stored rule.
func Decode(b []byte) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decode rule: %w", err)
	}
	return s, nil
}

// Channels are the delivery entries of the rule: email, then webhook.
func (r *Rule) Channels() []job.Deliver {
	var out []job.Deliver
	if e := r.Spec.Email; e != nil {
		out = append(out, job.Deliver{Email: e.To, CC: e.CC, BCC: e.BCC})
	}
	if w := r.Spec.Webhook; w != nil {
		out = append(out, job.Deliver{Webhook: w.URL, Secret: w.Secret, Timeout: w.Timeout, Headers: w.Headers})
	}
	return out
}
