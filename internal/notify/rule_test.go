package notify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/notify"
)

const example = `
[[rule]]
name   = "server-down"
on     = ["node.lost", "primary.changed"]
when   = 'type != "primary.changed" || data.reason == "crash"'
repeat = "15m"
key    = "{{.Node}}"
[rule.email]
to = ["ops@example.com"]
subject = "tandem: {{.Type}} on {{.Node}}"
[rule.webhook]
url = "https://hooks.example.com/tandem"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
`

// The example parses, compiles and matches what it says.
func TestParseExample(t *testing.T) {
	t.Parallel()
	specs, err := notify.Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	r, err := notify.Compile(specs[0])
	if err != nil {
		t.Fatal(err)
	}
	if r.Spec.Repeat.D() != 15*time.Minute || len(r.Channels()) != 2 {
		t.Fatalf("spec %+v", r.Spec)
	}
	for _, c := range []struct {
		ev   notify.Event
		want bool
	}{
		{notify.Event{ID: 1, Type: "node.lost", Node: "b", Data: map[string]any{"node": "b"}}, true},
		{notify.Event{ID: 2, Type: "primary.changed", Node: "a", Data: map[string]any{"reason": "crash", "epoch": float64(3)}}, true},
		{notify.Event{ID: 3, Type: "primary.changed", Node: "a", Data: map[string]any{"reason": "handover"}}, false},
		{notify.Event{ID: 4, Type: "run.failed", Node: "a"}, false},
	} {
		got, err := r.Match(c.ev)
		if err != nil || got != c.want {
			t.Errorf("match %+v = %v, %v; want %v", c.ev, got, err, c.want)
		}
	}
	m, err := r.Render(notify.Event{ID: 1, Type: "node.lost", Node: "b", By: "a", Message: "node b lost"})
	if err != nil || m.Key != "b" || m.Subject != "tandem: node.lost on b" || !strings.Contains(m.Body, "node b lost") {
		t.Fatalf("render: %+v, %v", m, err)
	}
}

// A condition naming a field the event types do not have is refused, the field named;
// so are wrong types, unknown event types, bad templates, addresses and URLs.
func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		file, want string
	}{
		{`[[rule]]
name = "r"
on = ["delivery.failed"]
when = 'data.sucess == false'`, "rule[0].when: unknown field data.sucess at 1:6"},
		{`[[rule]]
name = "r"
on = ["node.lost"]
when = 'data.node + 1'`, "rule[0].when:"},
		{`[[rule]]
name = "r"
on = ["node.lost"]
when = 'data.node'`, "rule[0].when: expected bool"},
		{`[[rule]]
name = "r"
on = ["node.gone"]`, `rule[0].on[0]: "node.gone" is not an event type`},
		{`[[rule]]
name = "r"
on = ["node.lost"]
key = "{{.Node"`, "rule[0].key:"},
		{`[[rule]]
name = "r"
on = ["node.lost"]
[rule.email]
to = ["not an address"]`, "rule[0].email.to[0]:"},
		{`[[rule]]
name = "r"
on = ["node.lost"]
[rule.webhook]
url = "ftp://x"`, "rule[0].webhook.url:"},
		{`[[rule]]
name = "r"
on = ["node.lost"]
colour = "red"`, "rule.colour: unknown field"},
		{`[[rule]]
name = "r"
on = ["node.lost"]
[[rule]]
name = "r"
on = ["node.lost"]`, `rule[1].name: "r" appears twice`},
		{`[[rule]]
name = "r"
on = ["node.lost"]
[rule.webhook]
url = "https://h.example/x"
headers = { "X Y" = "1" }`, "rule[0].webhook.headers.X Y:"},
		{``, "no [[rule]]"},
	} {
		_, err := notify.Parse([]byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parse %q: %v, want an error containing %q", c.file, err, c.want)
		}
	}
}

// A rule's webhook may refer to secrets in its URL, secret and header values; its
// channel carries the references, resolved by the node that sends.
func TestRuleWebhookSecretReferences(t *testing.T) {
	t.Parallel()
	specs, err := notify.Parse([]byte(`[[rule]]
name = "r"
on = ["node.lost"]
[rule.webhook]
url = 'https://ops:{{secret "P"}}@h.example/x?k={{secret "K"}}'
secret = '{{secret "WH"}}'
headers = { Authorization = 'Bearer {{secret "K"}}' }`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := notify.Compile(specs[0])
	if err != nil {
		t.Fatal(err)
	}
	ch := r.Channels()
	if len(ch) != 1 || ch[0].Secret != `{{secret "WH"}}` || ch[0].Headers["Authorization"] != `Bearer {{secret "K"}}` {
		t.Fatalf("channels: %+v", ch)
	}
}

// A rule is not notified of the failures of its own notifications.
func TestOwnFailureDoesNotMatch(t *testing.T) {
	t.Parallel()
	r, err := notify.Compile(notify.Spec{Name: "df", On: []string{"delivery.failed"}})
	if err != nil {
		t.Fatal(err)
	}
	own := notify.Event{ID: 5, Type: "delivery.failed", Data: map[string]any{"rule": "df", "notification": float64(3)}}
	other := notify.Event{ID: 6, Type: "delivery.failed", Data: map[string]any{"rule": "", "run": float64(9)}}
	if ok, _ := r.Match(own); ok {
		t.Fatal("a rule matched the failure of its own notification")
	}
	if ok, _ := r.Match(other); !ok {
		t.Fatal("a rule did not match a run's delivery failure")
	}
}
