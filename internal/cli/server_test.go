package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/config"
)

// Flags override the environment, which overrides the file; what no flag names keeps
// the value from below.
func TestFlagsOverrideEnvironmentAndFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tandem.toml")
	if err := os.WriteFile(file, []byte("priority = 5\ncapacity = 7\nlisten = \"127.0.0.1:9001\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file, map[string]string{"TANDEM_PRIORITY": "3", "TANDEM_SHUTDOWN_GRACE": "9s", "TANDEM_TAGS": "eu"})
	if err != nil {
		t.Fatal(err)
	}
	cmd := newServerCmd()
	if err := cmd.Flags().Parse([]string{"--priority", "1", "--tags", "gpu,us", "--worker", "--lease-profile", "normal"}); err != nil {
		t.Fatal(err)
	}
	applyFlags(cmd, &cfg)
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	if cfg.Priority != 1 || cfg.Capacity != 7 || cfg.Listen != "127.0.0.1:9001" || cfg.ShutdownGrace != 9*time.Second ||
		len(cfg.Tags) != 2 || cfg.Tags[0] != "gpu" || cfg.Lease.TTL != 5*time.Second {
		t.Fatalf("config %+v: want priority 1 (flag), capacity 7 and listen from the file, grace 9s (env), tags gpu,us (flag), TTL 5s (profile)", cfg)
	}
}
