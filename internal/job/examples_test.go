package job

import (
	"os"
	"path/filepath"
	"testing"
)

// Every job file in examples/ parses and validates (Parse does both): the README tells
// newcomers to apply them. Server configurations live in examples/server/ and are read
// by internal/config's test.
func TestExamplesParse(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../examples/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		specs, err := Parse(b, FormatTOML)
		if err != nil || len(specs) == 0 {
			t.Errorf("%s: %d jobs, %v", filepath.Base(f), len(specs), err)
		}
	}
}
