package job

import (
	"errors"
	"strings"
	"testing"
)

const good = `
name = "daily-sales"
schedule = ["0 7 * * MON-FRI", "@every 30s"]
timezone = "Europe/Berlin"
blackout = ["2026-12-24", "*-12-25"]
misfire = "run-all"
overlap = "forbid"
timeout = "10m"
retries = 3
tags = ["reports"]

[command]
argv = ["./sales-report.sh", "--format", "csv"]
env = { REGION = "emea" }
dir = "/srv/reports"

[[deliver]]
email = ["sales-leads@example.com"]
`

func TestParseGoodTOMLAndJSON(t *testing.T) {
	t.Parallel()
	specs, err := Parse([]byte(good), FormatTOML)
	if err != nil {
		t.Fatal(err)
	}
	s := specs[0]
	if s.Name != "daily-sales" || len(s.Schedule) != 2 || s.Timeout.D().Minutes() != 10 || s.Command.Env["REGION"] != "emea" ||
		s.RetryBackoff.D() != RetryBackoffDefault || s.MisfireGrace.D() != MisfireGraceDefault || len(s.Deliver) != 1 {
		t.Fatalf("parsed %+v", s)
	}
	js := `[{"name": "a", "schedule": ["@hourly"], "timeout": "5s", "http": {"url": "https://example.com/x"}},
	        {"name": "b", "command": {"argv": ["true"]}}]`
	specs, err = Parse([]byte(js), DetectFormat("jobs.json", []byte(js)))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[0].HTTP.Method != "GET" || specs[1].Timeout.D() != TimeoutDefault {
		t.Fatalf("parsed %+v", specs)
	}
	multi := "[[job]]\nname = \"x\"\n[job.command]\nargv = [\"true\"]\n[[job]]\nname = \"y\"\n[job.command]\nargv = [\"true\"]\n"
	if specs, err := Parse([]byte(multi), FormatTOML); err != nil || len(specs) != 2 {
		t.Fatalf("[[job]] tables: %v %v", specs, err)
	}
}

func TestParseBadInputNamesTheField(t *testing.T) {
	t.Parallel()
	base := "name = \"j\"\n"
	cmd := "[command]\nargv = [\"true\"]\n"
	cases := []struct {
		name, format, text, field, says string
	}{
		{"bad cron", FormatTOML, base + "schedule = [\"0 7 * * XYZ\"]\n" + cmd, "schedule[0]", "day-of-week"},
		{"cron minute", FormatTOML, base + "schedule = [\"60 * * * *\"]\n" + cmd, "schedule[0]", "minute"},
		{"field count", FormatTOML, base + "schedule = [\"* * *\"]\n" + cmd, "schedule[0]", "5"},
		{"unknown zone", FormatTOML, base + "timezone = \"Mars/Base\"\n" + cmd, "timezone", "IANA"},
		{"negative timeout", FormatTOML, base + "timeout = \"-5s\"\n" + cmd, "timeout", "negative"},
		{"bad duration", FormatTOML, base + "timeout = \"soon\"\n" + cmd, "timeout", "duration"},
		{"unknown executor", FormatTOML, base + "[shell]\nscript = \"x\"\n", "shell", "executor"},
		{"missing command", FormatTOML, base, "command", "missing executor"},
		{"empty argv", FormatTOML, base + "[command]\nargv = []\n", "command.argv", "missing"},
		{"two executors", FormatTOML, base + cmd + "[http]\nurl = \"http://x\"\n", "http", "not both"},
		{"bad url", FormatTOML, base + "[http]\nurl = \"ftp://x\"\n", "http.url", "http"},
		{"bad name", FormatTOML, "name = \"a b\"\n" + cmd, "name", "letters"},
		{"no name", FormatTOML, cmd, "name", "missing"},
		{"duplicate", FormatTOML, "[[job]]\nname = \"d\"\n[job.command]\nargv = [\"true\"]\n[[job]]\nname = \"d\"\n[job.command]\nargv = [\"true\"]\n", "name", "duplicate"},
		{"malformed toml", FormatTOML, "name = \"x\n", "toml", "line 1"},
		{"malformed json", FormatJSON, `{"name": "x",`, "json", "malformed"},
		{"unknown json key", FormatJSON, `{"name": "x", "cron": "* * * * *", "command": {"argv": ["true"]}}`, "cron", "unknown"},
		{"wrong json type", FormatJSON, `{"name": "x", "retries": "three", "command": {"argv": ["true"]}}`, "retries", "type"},
		{"misfire", FormatTOML, base + "misfire = \"sometimes\"\n" + cmd, "misfire", "skip, run-once, run-all"},
		{"overlap", FormatTOML, base + "overlap = \"maybe\"\n" + cmd, "overlap", "allow, forbid"},
		{"retries", FormatTOML, base + "retries = -1\n" + cmd, "retries", "between"},
		{"blackout", FormatTOML, base + "blackout = [\"2026-02-30\"]\n" + cmd, "blackout", "2026-02-30"},
		{"end before start", FormatTOML, base + "start = \"2026-02-01T00:00:00Z\"\nend = \"2026-01-01T00:00:00Z\"\n" + cmd, "end", "after start"},
		{"shell argv", FormatTOML, base + "[command]\nshell = true\nargv = [\"echo\", \"x\"]\n", "command.argv", "exactly one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.text), c.format)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v (%T), want a *ValidationError", err, err)
			}
			if ve.Field != c.field || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error %q on field %q, want field %q saying %q", err, ve.Field, c.field, c.says)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good), true)
	f.Add([]byte(`{"name":"a","command":{"argv":["x"]}}`), false)
	f.Fuzz(func(t *testing.T, data []byte, toml bool) {
		format := FormatJSON
		if toml {
			format = FormatTOML
		}
		specs, err := Parse(data, format)
		if err != nil {
			return
		}
		for _, s := range specs {
			if err := s.Validate(); err != nil {
				t.Fatalf("Parse returned a spec that does not validate: %v", err)
			}
		}
	})
}
