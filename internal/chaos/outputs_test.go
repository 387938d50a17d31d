package chaos

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/chaos/history"
)

// The job's script writes what KeptBytes says.
func TestKeptScript(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("/bin/sh", "-c", KeptScript())
	cmd.Env = append(os.Environ(), "TANDEM_RUN_ID=4711", "TANDEM_OUTPUT_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, history.KeptFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(history.KeptBytes(4711)) {
		t.Fatalf("the script wrote %d bytes starting %q, want %d starting %q", len(got), strings.SplitN(string(got), "\n", 2)[0],
			history.KeptSize, strings.SplitN(string(history.KeptBytes(4711)), "\n", 2)[0])
	}
}
