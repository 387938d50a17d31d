package notify_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tandemhq/tandem/internal/notify"
)

// Every rule file in examples/rules/ parses and compiles: the README applies them.
func TestExampleRulesParse(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../examples/rules/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if specs, err := notify.Parse(b); err != nil || len(specs) == 0 {
			t.Errorf("%s: %d rules, %v", filepath.Base(f), len(specs), err)
		}
	}
}
