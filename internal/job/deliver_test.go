package job

import (
	"errors"
	"strings"
	"testing"
)

// Each [[deliver]] entry names one channel; its problems name the field.
func TestDeliverEntriesValidated(t *testing.T) {
	t.Parallel()
	head := "name = \"d\"\n[noop]\n"
	cases := []struct{ name, entries, field, says string }{
		{"two channels", "[[deliver]]\nemail = [\"a@example.com\"]\nwebhook = \"https://h.example.com\"\n", "deliver[0].webhook", "one channel"},
		{"empty", "[[deliver]]\non = [\"always\"]\n", "deliver[0]", "empty"},
		{"bad on", "[[deliver]]\nwebhook = \"https://h.example.com\"\non = [\"sometimes\"]\n", "deliver[0].on", "success, failure, always"},
		{"ftp webhook", "[[deliver]]\nwebhook = \"ftp://h.example.com\"\n", "deliver[0].webhook", "http:// or https://"},
		{"bad secret", "[[deliver]]\nwebhook = \"https://h.example.com\"\nsecret = \"hunter2\"\n", "deliver[0].secret", "whsec_"},
		{"bad cc", "[[deliver]]\nemail = [\"a@example.com\"]\ncc = [\"nope\"]\n", "deliver[0].cc[0]", "not an email address"},
		{"template syntax", "[[deliver]]\nemail = [\"a@example.com\"]\nsubject = \"{{.Job\"\n", "deliver[0].subject", "template"},
		{"unknown field", "[[deliver]]\nwebhook = \"https://h.example.com\"\n[[deliver]]\nemail = [\"a@example.com\"]\nbody = \"{{.Nope}}\"\n", "deliver[1].body", "Nope"},
		{"relative directory", "[[deliver]]\ndirectory = \"reports/{{.Job}}\"\n", "deliver[0].directory", "absolute"},
		{"setting of another channel", "[[deliver]]\ndirectory = \"/srv/r\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n", "deliver[0].secret", "directory entries"},
		{"bad glob", "[[deliver]]\ndirectory = \"/srv/r\"\nattach = [\"[\"]\n", "deliver[0].attach", "glob"},
		{"bad header", "[[deliver]]\nwebhook = \"https://h.example.com\"\nheaders = { \"X Y\" = \"1\" }\n", "deliver[0].headers.X Y", "not an HTTP header name"},
		{"tandem's header", "[[deliver]]\nwebhook = \"https://h.example.com\"\nheaders = { Webhook-Signature = \"v1,x\" }\n", "deliver[0].headers.Webhook-Signature", "set by tandem"},
		{"headers of email", "[[deliver]]\nemail = [\"a@example.com\"]\nheaders = { X-A = \"1\" }\n", "deliver[0].headers", "email entries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(head+c.entries), FormatTOML)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error %v, want field %s saying %q", err, c.field, c.says)
			}
		})
	}
	// Secret references stand for values checked when they are resolved, at send time.
	if _, err := Parse([]byte(head+"[[deliver]]\nwebhook = 'https://u:{{secret \"P\"}}@h.example.com/?k={{secret \"K\"}}'\n"+
		"secret = '{{secret \"WH\"}}'\nheaders = { Authorization = 'Bearer {{secret \"K\"}}' }\n"), FormatTOML); err != nil {
		t.Fatalf("secret references in a webhook entry: %v", err)
	}
	specs, err := Parse([]byte(head+"[[deliver]]\nwebhook = \"https://h.example.com\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n"+
		"[[deliver]]\ndirectory = \"/srv/reports/{{.Job}}/{{.Date}}\"\non = [\"always\"]\n"), FormatTOML)
	if err != nil {
		t.Fatal(err)
	}
	d := specs[0].Deliver
	if d[0].Channel() != ChannelWebhook || strings.Join(d[0].On, ",") != OnSuccess || d[0].Timeout.D() != WebhookTimeoutDefault ||
		d[1].Channel() != ChannelDirectory || !*d[1].Overwrite || strings.Join(d[1].States(), ",") != "succeeded,failed,canceled" {
		t.Fatalf("defaults: %+v", d)
	}
}

// Where a webhook entry delivers to, as listings, logs and events show it, has no URL
// password or query values.
func TestDeliverTargetHidesURLSecrets(t *testing.T) {
	t.Parallel()
	d := Deliver{Webhook: "https://hooks:pa55w0rd@h.example/in?token=abc123&x=1"}
	if got, want := d.Target(), "https://hooks:***@h.example/in?token=***&x=***"; got != want {
		t.Fatalf("Target() = %q, want %q", got, want)
	}
}
