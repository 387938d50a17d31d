package job

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
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
		{"copies", FormatTOML, base + "copies = 11\n" + cmd, "copies", "between 1 and 10"},
		{"copies negative", FormatTOML, base + "copies = -1\n" + cmd, "copies", "between 1 and 10"},
		{"blackout", FormatTOML, base + "blackout = [\"2026-02-30\"]\n" + cmd, "blackout", "2026-02-30"},
		{"end before start", FormatTOML, base + "start = \"2026-02-01T00:00:00Z\"\nend = \"2026-01-01T00:00:00Z\"\n" + cmd, "end", "after start"},
		{"noop and command", FormatTOML, base + cmd + "[noop]\n", "noop", "not both"},
		{"negative noop sleep", FormatTOML, base + "[noop]\nsleep = \"-1s\"\n", "noop.sleep", "between"},
		{"long noop sleep", FormatTOML, base + "[noop]\nsleep = \"25h\"\n", "noop.sleep", "between"},
		{"bad noop sleep", FormatTOML, base + "[noop]\nsleep = \"later\"\n", "noop.sleep", "duration"},
		{"unknown noop key", FormatTOML, base + "[noop]\nsleeps = \"1s\"\n", "noop.sleeps", "unknown"},
		{"noop json sleep type", FormatJSON, `{"name": "x", "noop": {"sleep": 5}}`, "json", "duration"},
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

// The no-op executor: an empty table, one with a sleep, in [[job]] tables and in JSON,
// and back to JSON with the same keys.
func TestParseNoop(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, format, text string
		sleep              time.Duration
	}{
		{"empty table", FormatTOML, "name = \"n\"\n[noop]\n", 0},
		{"inline table", FormatTOML, "name = \"n\"\nnoop = {}\n", 0},
		{"sleep", FormatTOML, "name = \"n\"\n[noop]\nsleep = \"250ms\"\n", 250 * time.Millisecond},
		{"job tables", FormatTOML, "[[job]]\nname = \"n\"\n[job.noop]\nsleep = \"1s\"\n", time.Second},
		{"json", FormatJSON, `{"name": "n", "noop": {"sleep": "2s"}}`, 2 * time.Second},
		{"json empty", FormatJSON, `{"name": "n", "noop": {}}`, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			specs, err := Parse([]byte(c.text), c.format)
			if err != nil {
				t.Fatal(err)
			}
			s := specs[0]
			if s.Noop == nil || s.Command != nil || s.HTTP != nil || s.Noop.Sleep.D() != c.sleep {
				t.Fatalf("parsed %+v (noop %+v), want a noop sleeping %s", s, s.Noop, c.sleep)
			}
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(b, FormatJSON)
			if err != nil || again[0].Noop == nil || again[0].Noop.Sleep != s.Noop.Sleep {
				t.Fatalf("round trip through %s: %+v, %v", b, again, err)
			}
		})
	}
}

// FuzzParse checks that whatever Parse accepts validates, and that no input costs more
// than a budget of time and memory proportional to its size: a parser's cost must not
// grow faster than its input, or a small request body can exhaust a server. The seeds
// include the deep inputs that once cost the TOML decoder gigabytes.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good), true)
	f.Add([]byte(`{"name":"a","command":{"argv":["x"]}}`), false)
	f.Add([]byte("name = \"n\"\n[noop]\nsleep = \"1s\"\n"), true)
	for _, n := range []int{DepthMax, DepthMax + 1, 20000, 40000} {
		for _, in := range deepInputs(n) {
			f.Add([]byte(in.text), in.format == FormatTOML)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, toml bool) {
		format := FormatJSON
		if toml {
			format = FormatTOML
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		specs, err := Parse(data, format)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if alloc, budget := after.TotalAlloc-before.TotalAlloc, uint64(parseAllocBase+parseAllocPerByte*len(data)); alloc > budget {
			t.Fatalf("Parse of %d bytes allocated %d bytes, over the budget of %d", len(data), alloc, budget)
		}
		if budget := parseTimeBase + time.Duration(len(data))*parseTimePerByte; took > budget {
			t.Fatalf("Parse of %d bytes took %s, over the budget of %s", len(data), took, budget)
		}
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

// Parse's budget per input: generous multiples of what the decoders take on the
// costliest inputs within DepthMax (about 750 bytes allocated and 2 µs per input byte
// for 16-deep keys, repeated), far below what deep nesting cost (20-60 KB per byte).
const (
	parseAllocBase    = 1 << 20
	parseAllocPerByte = 4 << 10
	parseTimeBase     = time.Second
	parseTimePerByte  = 100 * time.Microsecond
)

// Content that can only be JSON is read as JSON, so a malformed file is told what is
// wrong with it as JSON, not as TOML.
func TestDetectFormat(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"-", `{"name": "x"}`, FormatJSON},
		{"-", `{"name": "x",}`, FormatJSON}, // malformed, still JSON
		{"-", " [ {\"name\": \"x\"} ]", FormatJSON},
		{"-", `[{"name": "x"`, FormatJSON},
		{"-", "[]", FormatJSON},
		{"-", "name = \"x\"\n[command]\nargv = [\"true\"]\n", FormatTOML},
		{"-", "[command]\nargv = [\"true\"]\n", FormatTOML},
		{"-", "[[job]]\nname = \"x\"\n", FormatTOML},
		{"jobs.json", "name = 1", FormatJSON},
		{"jobs.toml", `{"name": "x"}`, FormatTOML},
	} {
		if got := DetectFormat(c.name, []byte(c.data)); got != c.want {
			t.Errorf("DetectFormat(%q, %q) = %s, want %s", c.name, c.data, got, c.want)
		}
	}
	if _, err := Parse([]byte(`{"name": "x",}`), DetectFormat("-", []byte(`{"name": "x",}`))); err == nil || strings.Contains(err.Error(), "toml") {
		t.Fatalf("malformed JSON: %v, want a JSON error", err)
	}
}
