package job

import (
	"errors"
	"strings"
	"testing"
)

// deepInputs are the shapes that made the TOML decoder spend gigabytes and seconds, each
// n levels deep.
func deepInputs(n int) map[string]struct{ format, text string } {
	keys := strings.Repeat("a.", n-1) + "a"
	return map[string]struct{ format, text string }{
		"table header":    {FormatTOML, "[" + keys + "]\n"},
		"array of tables": {FormatTOML, "[[" + keys + "]]\n"},
		"dotted key":      {FormatTOML, "name = \"x\"\n" + keys + " = 1\n"},
		"inline tables":   {FormatTOML, "a = " + strings.Repeat("{a = ", n-1) + "{}" + strings.Repeat("}", n-1) + "\n"},
		"arrays":          {FormatTOML, "a = " + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + "\n"},
		"quoted keys":     {FormatTOML, strings.Repeat(`"a".`, n-1) + "'a' = 1\n"},
		"json objects":    {FormatJSON, strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)},
		"json arrays":     {FormatJSON, strings.Repeat("[", n) + strings.Repeat("]", n)},
	}
}

func TestParseRefusesDeepNesting(t *testing.T) {
	t.Parallel()
	for name, in := range deepInputs(30000) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(in.text), in.format)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != in.format || !strings.Contains(err.Error(), "deeper than 16") {
				t.Fatalf("error %v, want one on field %s saying deeper than 16", err, in.format)
			}
		})
	}
}

// Within the limit, the scan leaves the decoder to judge; just past it, it refuses.
func TestDepthLimitIsExact(t *testing.T) {
	t.Parallel()
	for name, in := range deepInputs(DepthMax) {
		if err := checkDepth([]byte(in.text), in.format); err != nil {
			t.Errorf("%s at depth %d: %v, want accepted", name, DepthMax, err)
		}
	}
	for name, in := range deepInputs(DepthMax + 1) {
		if err := checkDepth([]byte(in.text), in.format); err == nil {
			t.Errorf("%s at depth %d accepted, want refused", name, DepthMax+1)
		}
	}
}

// Nesting cannot hide in what the decoder would read differently: brackets in strings
// and comments do not count, and a quote inside a comment or another string opens nothing.
func TestDepthScanFollowsTOMLSyntax(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", 20) + strings.Repeat("]", 20)
	dotted := strings.Repeat("a.", 19) + "a"
	cases := []struct {
		name, text string
		refused    bool
	}{
		{"brackets in a basic string", `a = "` + deep + `"`, false},
		{"brackets in a literal string", `a = '` + deep + `'`, false},
		{"brackets in a multi-line string", "a = \"\"\"\n" + deep + "\n\"\"\"", false},
		{"brackets in a multi-line literal", "a = '''\n" + deep + "\n'''", false},
		{"brackets in a comment", "a = 1 # " + deep, false},
		{"escaped quote", `a = "x\"` + deep + `"`, false},
		{"quote in a comment", "# \"\na = " + deep, true},
		{"quote in a literal", "a = '\"'\nb = " + deep, true},
		{"multi-line string ends", "a = \"\"\"x\"\"\"\nb = " + deep, true},
		{"five quotes", "a = \"\"\"x\"\"\"\"\"\nb = " + deep, true},
		{"literal backslash", `a = 'x\'` + "\nb = " + deep, true},
		{"dotted key after a header", "[" + strings.Repeat("a.", 9) + "a]\n" + strings.Repeat("b.", 9) + "b = 1", true},
		{"spaced dotted key", strings.Repeat("a . ", 19) + "a = 1", true},
		{"quoted key with a dot", `"a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a" = 1`, false},
		{"header", "[" + dotted + "]", true},
		{"array of tables", "[[" + dotted + "]]", true},
		{"header comment", "[a] # " + deep, false},
		{"dotted keys in inline tables", "a = {" + dotted + " = 1}", true},
		{"second key of an inline table", "a = {b = 1, " + dotted + " = 1}", true},
		{"inline table in an array", "a = [1, {b = " + deep + "}]", true},
		{"multi-line array", "a = [\n1,\n# ]\n" + deep + "\n]", true},
		{"unclosed array", "a = " + strings.Repeat("[", 20), true},
		{"a job file", good, false},
	}
	for _, c := range cases {
		if err := checkDepth([]byte(c.text), FormatTOML); (err != nil) != c.refused {
			t.Errorf("%s: %v, want refused %v", c.name, err, c.refused)
		}
	}
	for _, c := range []struct {
		name, text string
		refused    bool
	}{
		{"brackets in a string", `{"a": "` + deep + `"}`, false},
		{"escaped quote", `{"a": "\"` + deep + `"}`, false},
		{"escaped backslash", `{"a": "\\", "b": ` + deep + `}`, true},
	} {
		if err := checkDepth([]byte(c.text), FormatJSON); (err != nil) != c.refused {
			t.Errorf("json %s: %v, want refused %v", c.name, err, c.refused)
		}
	}
}

func TestDepthErrorNamesTheLine(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("name = \"x\"\n\n"+strings.Repeat("a.", 30)+"a = 1\n"), FormatTOML)
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("error %v, want it to name line 3", err)
	}
}
