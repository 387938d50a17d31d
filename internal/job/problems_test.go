package job

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Problems once accepted silently, or told in Go's words: each is refused naming the
// job and the field, in the job file's words.
func TestParseNamesJobAndFieldInPlainWords(t *testing.T) {
	t.Parallel()
	cmd := "[command]\nargv = [\"true\"]\n"
	cases := []struct {
		name, format, text, job, field, says string
	}{
		{"zero timeout", FormatTOML, "name = \"z\"\ntimeout = \"0s\"\n" + cmd, "z", "timeout", "more than 0s"},
		{"zero timeout json", FormatJSON, `{"name": "z", "timeout": "0s", "command": {"argv": ["true"]}}`, "z", "timeout", "more than 0s"},
		{"zero timeout in a [[job]]", FormatTOML, "[[job]]\nname = \"a\"\n[job.noop]\n[[job]]\nname = \"b\"\ntimeout = \"0m\"\n[job.noop]\n", "b", "timeout", "more than 0s"},
		{"bad email", FormatTOML, "name = \"m\"\n" + cmd + "[[deliver]]\nemail = [\"not-an-email\"]\n", "m", "deliver[0].email[0]", "not an email address"},
		{"second email", FormatJSON, `{"name": "m", "noop": {}, "deliver": [{"webhook": "https://x"}, {"email": ["a@example.com", "b@"]}]}`, "m", "deliver[1].email[1]", `"b@"`},
		{"json job of the wrong type", FormatJSON, `[{"name": "a", "noop": {}}, 1]`, "2 of the file", "json", "want an object (one job), got a JSON number"},
		{"json field of the wrong type", FormatJSON, `{"name": "t", "tags": "x", "noop": {}}`, "t", "tags", "want an array of strings, got a JSON string"},
		{"json table of the wrong type", FormatJSON, `{"name": "t", "command": []}`, "t", "command", "want an object, got a JSON array"},
		{"json deliver of the wrong type", FormatJSON, `{"name": "t", "noop": {}, "deliver": {"email": []}}`, "t", "deliver", "want an array of objects"},
		{"json unnamed job", FormatJSON, `[{"noop": {}, "retries": "x"}]`, "1 of the file", "retries", "want a whole number"},
		{"toml field of the wrong type", FormatTOML, "name = \"t\"\nretries = 1.5\n[noop]\n", "t", "retries", "line 2: wrong type: want a whole number, got a float"},
		{"toml table of the wrong type", FormatTOML, "name = \"t\"\ncommand = 1\n", "t", "command", "want a table, got an integer"},
		{"toml [[job]] field", FormatTOML, "[[job]]\nname = \"a\"\n[job.noop]\n[[job]]\nname = \"b\"\n[job.command]\nargv = 1\n", "b", "command.argv", "want an array of strings"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.text), c.format)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v (%T), want a *ValidationError", err, err)
			}
			if ve.Job != c.job || ve.Field != c.field || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error %q (job %q, field %q), want job %q, field %q, saying %q", err, ve.Job, ve.Field, c.job, c.field, c.says)
			}
			for _, goWord := range []string{"job.", "int64", "float64", "[]string", "destination", "Spec"} {
				if strings.Contains(ve.Problem, goWord) {
					t.Errorf("error %q speaks Go (%s)", err, goWord)
				}
			}
		})
	}
}

func TestParseKeepsGoodEmailsAndTimeouts(t *testing.T) {
	t.Parallel()
	specs, err := Parse([]byte("name = \"g\"\ntimeout = \"90s\"\n[noop]\n[[deliver]]\nemail = [\"a@example.com\", \"Sales <sales@example.com>\"]\n"), FormatTOML)
	if err != nil {
		t.Fatal(err)
	}
	if specs[0].Timeout.D() != 90*time.Second {
		t.Fatalf("timeout %s, want 90s", specs[0].Timeout)
	}
	specs, err = Parse([]byte(`{"name": "g", "noop": {}}`), FormatJSON)
	if err != nil || specs[0].Timeout.D() != TimeoutDefault {
		t.Fatalf("no timeout: %+v %v, want the default", specs, err)
	}
}

func TestCheckAtFuture(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	s := Spec{Name: "once", Schedule: []string{"@daily", "at 2026-05-01T00:00:00Z"}}
	err := s.CheckAtFuture(now, nil)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Job != "once" || ve.Field != "schedule[1]" || !strings.Contains(err.Error(), "in the past") {
		t.Fatalf("error %v, want schedule[1] in the past", err)
	}
	if err := s.CheckAtFuture(now, []string{" at  2026-05-01T00:00:00Z"}); err != nil {
		t.Fatalf("re-applied unchanged: %v, want accepted", err)
	}
	if err := s.CheckAtFuture(now, []string{"at 2026-05-02T00:00:00Z"}); err == nil {
		t.Fatal("a changed past at accepted")
	}
	if err := (&Spec{Name: "later", Schedule: []string{"at 2026-06-01T12:00:01Z"}}).CheckAtFuture(now, nil); err != nil {
		t.Fatalf("future at: %v", err)
	}
}
