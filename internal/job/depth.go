package job

import "bytes"

// DepthMax bounds how deeply a job file may nest: table headers and dotted keys count
// one level per key part, arrays one level each. A job file needs at most 8
// ([[job]] / [job.command] / env / a key is 4). The TOML decoder's time and memory grow
// far faster than the input on deep nesting (a 40 KB header `[a.a.a…]` cost gigabytes),
// so a deeper file is refused before it is decoded.
const DepthMax = 16

// checkDepth refuses data nested deeper than DepthMax, in one pass over its bytes.
func checkDepth(data []byte, format string) error {
	var at int
	if format == FormatJSON {
		at = jsonDepthExceeded(data, DepthMax)
	} else {
		at = tomlDepthExceeded(data, DepthMax)
	}
	if at < 0 {
		return nil
	}
	return invalid(format, "nested deeper than %d levels at line %d (tables, dotted keys and arrays count one level each; a job file needs at most 8)",
		DepthMax, 1+bytes.Count(data[:at], []byte("\n")))
}

// jsonDepthExceeded returns the offset where data's arrays and objects nest deeper than
// max, or -1.
func jsonDepthExceeded(data []byte, max int) int {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			if depth++; depth > max {
				return i
			}
		case ']', '}':
			depth--
		}
	}
	return -1
}

// tomlScan measures how deeply a TOML document nests without decoding it. It follows
// TOML's syntax far enough that nothing can hide nesting from it: strings (basic,
// literal, multi-line, with escapes), comments, quoted and dotted keys, table headers and
// arrays of tables, inline tables and arrays. On malformed input it errs towards
// counting more, never less. Every step consumes input, so it runs in linear time.
type tomlScan struct {
	data []byte
	i    int
	max  int
}

// frame is an open array or inline table of a value, with the depth of the value it
// belongs to.
type frame struct {
	kind  byte // '[' or '{'
	depth int
}

// tomlDepthExceeded returns the offset where data nests deeper than max, or -1.
func tomlDepthExceeded(data []byte, max int) int {
	s := &tomlScan{data: data, max: max}
	table := 0 // the depth of the last table header
	for {
		s.skipSpace(true)
		if s.i >= len(s.data) {
			return -1
		}
		depth := table
		if s.data[s.i] == '[' {
			s.i++
			if s.peek() == '[' {
				s.i++ // an array of tables: [[a.b]]
			}
			table = s.key()
			depth = table
		} else {
			depth += s.key()
		}
		if depth > s.max {
			return s.i
		}
		// The rest of the line: a key's value, or what follows a header (a comment;
		// anything else is counted as if it were a value).
		if at := s.value(depth); at >= 0 {
			return at
		}
	}
}

func (s *tomlScan) peek() byte {
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

// skipSpace skips blanks and comments, and newlines too when newlines is true.
func (s *tomlScan) skipSpace(newlines bool) {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\r':
		case '\n':
			if !newlines {
				return
			}
		case '#':
			for s.i < len(s.data) && s.data[s.i] != '\n' {
				s.i++
			}
			continue
		default:
			return
		}
		s.i++
	}
}

// key reads a key (bare, quoted, dotted) and returns its number of parts.
func (s *tomlScan) key() int {
	parts := 0
	for {
		s.skipSpace(false)
		switch c := s.peek(); {
		case c == '"' || c == '\'':
			s.str()
		case isBareKeyByte(c):
			for s.i < len(s.data) && isBareKeyByte(s.data[s.i]) {
				s.i++
			}
		default:
			return parts
		}
		parts++
		s.skipSpace(false)
		if s.peek() != '.' {
			return parts
		}
		s.i++
	}
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c >= 0x80
}

// str skips the string starting at s.i: basic ("…") or literal ('…'), on one line or
// multi-line (three quotes). An unterminated one-line string ends at the end of its line.
func (s *tomlScan) str() {
	q := s.data[s.i]
	triple := bytes.HasPrefix(s.data[s.i:], []byte{q, q, q})
	if triple {
		s.i += 3
	} else {
		s.i++
	}
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '\\' && q == '"':
			s.i += 2
			continue
		case c == '\n' && !triple:
			return
		case c == q && !triple:
			s.i++
			return
		case c == q && bytes.HasPrefix(s.data[s.i:], []byte{q, q, q}):
			s.i += 3
			return
		}
		s.i++
	}
}

// value reads the rest of a key/value line whose key sits at depth, through any arrays
// and inline tables it opens (which may span lines), and returns the offset where it
// nests deeper than max, or -1.
func (s *tomlScan) value(depth int) int {
	var open []frame
	expectKey := false // just after '{' or a ',' inside an inline table
	for s.i < len(s.data) {
		if expectKey {
			expectKey = false
			s.skipSpace(true)
			if depth = open[len(open)-1].depth + s.key(); depth > s.max {
				return s.i
			}
			continue
		}
		switch c := s.data[s.i]; c {
		case '\n':
			s.i++
			if len(open) == 0 {
				return -1
			}
		case '#':
			s.skipSpace(false)
		case '"', '\'':
			s.str()
		case '[', '{':
			open = append(open, frame{kind: c, depth: depth})
			s.i++
			if c == '{' {
				expectKey = true
				continue
			}
			if depth++; depth > s.max {
				return s.i - 1
			}
		case ']', '}':
			s.i++
			if len(open) > 0 {
				depth = open[len(open)-1].depth
				open = open[:len(open)-1]
			}
		case ',':
			s.i++
			if len(open) > 0 && open[len(open)-1].kind == '{' {
				expectKey = true
			}
		default:
			s.i++
		}
	}
	return -1
}
