package job

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/BurntSushi/toml"
)

// ValidationError says which field of a definition is wrong and why. Field is a path in
// the job file's own terms: "schedule[0]", "command.argv", "timeout".
type ValidationError struct {
	Job     string // the job's name, when known
	Field   string
	Problem string
}

func (e *ValidationError) Error() string {
	if e.Job != "" {
		return fmt.Sprintf("job %s: %s: %s", e.Job, e.Field, e.Problem)
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Problem)
}

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Formats of a job file.
const (
	FormatTOML = "toml"
	FormatJSON = "json"
)

// DetectFormat guesses a file's format from its name, then from its first character.
func DetectFormat(name string, data []byte) string {
	switch {
	case strings.HasSuffix(name, ".json"):
		return FormatJSON
	case strings.HasSuffix(name, ".toml"):
		return FormatTOML
	}
	// TOML never starts with '{', nor with '[' followed by '{' (a table header names a
	// table): such content is JSON, and its errors are told as JSON errors.
	t := bytes.TrimSpace(data)
	switch {
	case len(t) == 0:
		return FormatTOML
	case t[0] == '{':
		return FormatJSON
	case t[0] == '[':
		if rest := bytes.TrimSpace(t[1:]); len(rest) > 0 && (rest[0] == '{' || rest[0] == ']') || json.Valid(t) {
			return FormatJSON
		}
	}
	return FormatTOML
}

// fileTOML is a TOML job file: one job at the top level, or several as [[job]] tables.
type fileTOML struct {
	specFile
	Jobs []specFile `toml:"job"`
}

// specFile is a Spec as a file gives it. Its Timeout shadows the Spec's, as a pointer,
// so that a timeout given as zero is told apart from none (which defaults to an hour).
type specFile struct {
	Spec
	Timeout *Duration `json:"timeout,omitempty" toml:"timeout"`
}

func (f specFile) spec() (Spec, error) {
	s := f.Spec
	if f.Timeout != nil {
		if *f.Timeout == 0 {
			return s, &ValidationError{Job: s.Name, Field: "timeout",
				Problem: fmt.Sprintf("must be more than 0s: give the longest an attempt may take, e.g. \"10m\" (leave it out for the default, %s)", Duration(TimeoutDefault))}
		}
		s.Timeout = *f.Timeout
	}
	return s, nil
}

// Parse reads a job file (one job, or several: [[job]] tables in TOML, an array in JSON),
// strictly: unknown keys are errors. It fills defaults and validates every job; duplicate
// names within the file are refused. A file nested deeper than DepthMax is refused
// before it is decoded.
func Parse(data []byte, format string) ([]Spec, error) {
	if format == FormatJSON || format == FormatTOML {
		if err := checkDepth(data, format); err != nil {
			return nil, err
		}
	}
	var files []specFile
	switch format {
	case FormatJSON:
		var err error
		if files, err = parseJSON(data); err != nil {
			return nil, err
		}
	case FormatTOML:
		var f fileTOML
		md, err := toml.Decode(string(data), &f)
		if err != nil {
			return nil, tomlError(data, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return nil, unknownKey(und[0].String())
		}
		if len(f.Jobs) > 0 {
			if f.Name != "" || f.Command != nil || f.HTTP != nil || f.Noop != nil {
				return nil, invalid("job", "give either one job at the top level or [[job]] tables, not both")
			}
			files = f.Jobs
		} else {
			files = []specFile{f.specFile}
		}
	default:
		return nil, invalid("format", "unknown format %q (allowed: toml, json)", format)
	}
	if len(files) == 0 {
		return nil, invalid("job", "the file defines no job")
	}
	specs := make([]Spec, len(files))
	seen := map[string]int{}
	for i, f := range files {
		var err error
		if specs[i], err = f.spec(); err != nil {
			return nil, err
		}
		specs[i].Default()
		if err := specs[i].Validate(); err != nil {
			return nil, err
		}
		if j, dup := seen[specs[i].Name]; dup {
			return nil, &ValidationError{Job: specs[i].Name, Field: "name",
				Problem: fmt.Sprintf("duplicate name: jobs %d and %d of the file are both called %q", j+1, i+1, specs[i].Name)}
		}
		seen[specs[i].Name] = i
	}
	return specs, nil
}

func parseJSON(data []byte) ([]specFile, error) {
	t := bytes.TrimSpace(data)
	if len(t) > 0 && t[0] == '[' {
		var raw []json.RawMessage
		if err := json.Unmarshal(t, &raw); err != nil {
			return nil, jsonError(err, "", 0)
		}
		files := make([]specFile, len(raw))
		for i, r := range raw {
			if err := decodeJSON(r, &files[i], i+1); err != nil {
				return nil, err
			}
		}
		return files, nil
	}
	var f specFile
	if err := decodeJSON(t, &f, 0); err != nil {
		return nil, err
	}
	return []specFile{f}, nil
}

// decodeJSON decodes one job; n is its place in the file's array (0: the file is one job).
func decodeJSON(data []byte, f *specFile, n int) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(f); err != nil {
		// The job's name, if it has one, says which job is wrong.
		var named struct {
			Name any `json:"name"`
		}
		_ = json.Unmarshal(data, &named)
		name, _ := named.Name.(string)
		return jsonError(err, name, n)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("json", "unexpected data after the job object")
	}
	return nil
}

func unknownKey(key string) *ValidationError {
	switch key {
	case "shell", "exec", "script", "program", "sql", "executor":
		return invalid(key, "unknown executor %q (allowed: [command], [http], [noop])", key)
	}
	return invalid(key, "unknown field (see the job file reference in the README)")
}

func tomlError(data []byte, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if pe.LastKey != "" && strings.Contains(pe.Message, "is not a duration") {
			// A value our own types refused: the key is to blame, not the syntax.
			return withJob(invalid(pe.LastKey, "line %d: %s", pe.Position.Line, pe.Message), data, pe.Position.Line)
		}
		return invalid("toml", "malformed TOML at line %d: %s", pe.Position.Line, pe.Message)
	}
	// Type mismatches name the key and the line, in Go's terms:
	// `toml: line 3 (last key "timeout"): incompatible types: TOML value has type int64; destination has type string`.
	msg := err.Error()
	field, line := "", 0
	if i := strings.Index(msg, `(last key "`); i >= 0 {
		rest := msg[i+len(`(last key "`):]
		if j := strings.Index(rest, `"`); j >= 0 {
			field = rest[:j]
		}
	}
	_, _ = fmt.Sscanf(strings.TrimPrefix(msg, "toml: "), "line %d", &line)
	if field == "" {
		return invalid("toml", "%s", strings.TrimPrefix(msg, "toml: "))
	}
	got := ""
	if i := strings.Index(msg, "TOML value has type "); i >= 0 {
		got, _, _ = strings.Cut(msg[i+len("TOML value has type "):], ";")
	} else if i := strings.Index(msg, "but found "); i >= 0 {
		got = msg[i+len("but found "):]
	}
	problem := fmt.Sprintf("line %d: wrong type: want %s", line, want(field, FormatTOML))
	if got = tomlKinds[strings.TrimSpace(got)]; got != "" {
		problem += ", got " + got
	}
	return withJob(invalid(strings.TrimPrefix(field, "job."), "%s", problem), data, line)
}

// tomlKinds names the decoder's Go types of TOML values in TOML's words.
var tomlKinds = map[string]string{
	"string": "a string", "int64": "an integer", "float64": "a float", "bool": "a boolean",
	"time.Time": "a date-time", "map[string]interface {}": "a table", "[]interface {}": "an array",
}

// withJob names the job of a TOML file that a problem at line belongs to: the file's
// one job, or the [[job]] table that line is in.
func withJob(ve *ValidationError, data []byte, line int) *ValidationError {
	var names struct {
		Name any `toml:"name"`
		Jobs []struct {
			Name any `toml:"name"`
		} `toml:"job"`
	}
	if _, err := toml.Decode(string(data), &names); err != nil {
		return ve
	}
	if len(names.Jobs) == 0 {
		ve.Job, _ = names.Name.(string)
		return ve
	}
	n := 0 // [[job]] headers up to line
	for i, l := range bytes.Split(data, []byte("\n")) {
		if i >= line {
			break
		}
		if f := bytes.Fields(l); len(f) > 0 && bytes.Equal(f[0], []byte("[[job]]")) {
			n++
		}
	}
	if n > 0 && n <= len(names.Jobs) {
		if ve.Job, _ = names.Jobs[n-1].Name.(string); ve.Job == "" {
			ve.Job = fmt.Sprintf("%d of the file", n)
		}
	}
	return ve
}

// want says in plain words what a field holds.
func want(field, format string) string {
	table, tables := "a table", "an array of tables"
	if format == FormatJSON {
		table, tables = "an object", "an array of objects"
	}
	// Drop [[job]]'s prefix and array indices: "job.deliver[1].email" is deliver.email.
	var b strings.Builder
	depth := 0
	for _, r := range strings.TrimPrefix(field, "job.") {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	switch b.String() {
	case "":
		return table + " (one job)"
	case "schedule", "blackout", "tags", "command.argv", "deliver.email", "deliver.cc", "deliver.bcc", "deliver.attach", "deliver.on":
		return "an array of strings"
	case "deliver.max_attach_bytes":
		return "a whole number"
	case "deliver.include_files", "deliver.overwrite":
		return "true or false"
	case "retries", "copies":
		return "a whole number"
	case "http.expect_status":
		return "an array of whole numbers"
	case "command.shell":
		return "true or false"
	case "command", "http", "noop":
		return table
	case "command.env", "http.headers":
		return table + " of strings"
	case "deliver":
		return tables
	case "misfire_grace", "misfire_window", "timeout", "retry_backoff", "retry_backoff_max", "noop.sleep", "deliver.timeout":
		return `a duration string, e.g. "90s"`
	case "job":
		return tables + " (one per job)"
	}
	return "a string"
}

func jsonError(err error, name string, n int) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var ve *ValidationError
	switch {
	case errors.As(err, &se):
		return invalid("json", "malformed JSON at byte %d: %v", se.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("json", "malformed JSON: the document ends too early")
	case errors.As(err, &te):
		te.Field = strings.TrimPrefix(te.Field, "Spec.") // specFile's embedded Spec
		ve = invalid(te.Field, "wrong type: want %s, got a JSON %s", want(te.Field, FormatJSON), te.Value)
		if te.Field == "" {
			ve.Field = "json"
		}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		ve = unknownKey(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
	default:
		// Errors from field types (durations) carry their own explanation.
		ve = invalid("json", "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	ve.Job = name
	if name == "" && n > 0 {
		ve.Job = fmt.Sprintf("%d of the file", n)
	}
	return ve
}
