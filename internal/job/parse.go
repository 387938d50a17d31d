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
	Spec
	Jobs []Spec `toml:"job"`
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
	var specs []Spec
	switch format {
	case FormatJSON:
		var err error
		if specs, err = parseJSON(data); err != nil {
			return nil, err
		}
	case FormatTOML:
		var f fileTOML
		md, err := toml.Decode(string(data), &f)
		if err != nil {
			return nil, tomlError(err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return nil, unknownKey(und[0].String())
		}
		if len(f.Jobs) > 0 {
			if f.Spec.Name != "" || f.Spec.Command != nil || f.Spec.HTTP != nil || f.Spec.Noop != nil {
				return nil, invalid("job", "give either one job at the top level or [[job]] tables, not both")
			}
			specs = f.Jobs
		} else {
			specs = []Spec{f.Spec}
		}
	default:
		return nil, invalid("format", "unknown format %q (allowed: toml, json)", format)
	}
	if len(specs) == 0 {
		return nil, invalid("job", "the file defines no job")
	}
	seen := map[string]int{}
	for i := range specs {
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

func parseJSON(data []byte) ([]Spec, error) {
	t := bytes.TrimSpace(data)
	if len(t) > 0 && t[0] == '[' {
		var raw []json.RawMessage
		if err := json.Unmarshal(t, &raw); err != nil {
			return nil, jsonError(err)
		}
		specs := make([]Spec, len(raw))
		for i, r := range raw {
			if err := decodeJSON(r, &specs[i]); err != nil {
				return nil, err
			}
		}
		return specs, nil
	}
	var s Spec
	if err := decodeJSON(t, &s); err != nil {
		return nil, err
	}
	return []Spec{s}, nil
}

func decodeJSON(data []byte, s *Spec) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return jsonError(err)
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

func tomlError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if pe.LastKey != "" && strings.Contains(pe.Message, "is not a duration") {
			// A value our own types refused: the key is to blame, not the syntax.
			return invalid(pe.LastKey, "line %d: %s", pe.Position.Line, pe.Message)
		}
		return invalid("toml", "malformed TOML at line %d: %s", pe.Position.Line, pe.Message)
	}
	// Type mismatches name the key: "toml: line 3 (last key "timeout"): ..."
	msg := err.Error()
	field := "toml"
	if i := strings.Index(msg, `(last key "`); i >= 0 {
		rest := msg[i+len(`(last key "`):]
		if j := strings.Index(rest, `"`); j >= 0 {
			field = rest[:j]
		}
	}
	return invalid(field, "%s", strings.TrimPrefix(msg, "toml: "))
}

func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return invalid("json", "malformed JSON at byte %d: %v", se.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("json", "malformed JSON: the document ends too early")
	case errors.As(err, &te):
		return invalid(te.Field, "wrong type: got a JSON %s, want %s", te.Value, te.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return unknownKey(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
	}
	// Errors from field types (durations) carry their own explanation.
	return invalid("json", "%v", err)
}
