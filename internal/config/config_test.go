package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/config"
)

// With nothing configured, a node uses ./tandem-data (made absolute: runs execute in
// other working directories) and 127.0.0.1:8200 with the fast lease profile.
func TestDefaultsNeedNoConfiguration(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	got := []any{c.DataDir, c.DB, c.Listen, c.Advertise, c.Lease.Renew, c.Lease.TTL, c.Lease.Margin, c.IsPostgres()}
	data := filepath.Join(wd, "tandem-data")
	want := []any{data, filepath.Join(data, "tandem.db"), "127.0.0.1:8200", "127.0.0.1:8200",
		config.LeaseRenewDefault, config.LeaseTTLDefault, config.LeaseMarginDefault, false}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("defaults:\n got %v\nwant %v", got, want)
	}
}

// The file overrides the defaults, the environment overrides the file.
func TestFileThenEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tandem.toml")
	if err := os.WriteFile(path, []byte(`
node_id = "from-file"
priority = 2
capacity = 8
clock_skew = "2m"
[lease]
profile = "normal"
[heartbeat]
max_missed = 5
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, map[string]string{"TANDEM_PRIORITY": "1", "TANDEM_LEASE_TTL": "6s", "TANDEM_TAGS": "gpu,eu"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	got := []any{c.NodeID, c.Priority, c.Capacity, c.ClockSkew, c.Lease.Renew, c.Lease.TTL, c.Lease.Margin, c.Heartbeat.MaxMissed, c.Tags}
	want := []any{"from-file", 1, 8, 2 * time.Minute, time.Second, 6 * time.Second, 1500 * time.Millisecond, 5, []string{"gpu", "eu"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("file then environment:\n got %v\nwant %v", got, want)
	}
}

// A setting the file does not know is refused by name.
func TestUnknownSettingRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tandem.toml")
	if err := os.WriteFile(path, []byte("[lease]\nttll = \"2s\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path, nil)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Field != "lease.ttll" {
		t.Fatalf("Load = %v, want an error naming lease.ttll", err)
	}
}

// Each bad setting is named with what is allowed; several are reported together.
func TestValidateNamesEachField(t *testing.T) {
	cases := []struct {
		field string
		mod   func(*config.Config)
		hint  string
	}{
		{"data_dir", func(c *config.Config) { c.DataDir = "" }, "must not be empty"},
		{"db", func(c *config.Config) { c.DB = "postgres:///nohost" }, "postgres://USER"},
		{"listen", func(c *config.Config) { c.Listen = "8200" }, "host:port"},
		{"redirect_http", func(c *config.Config) { c.RedirectHTTP = ":8080" }, "needs tls_cert"},
		{"redirect_http", func(c *config.Config) { c.RedirectHTTP, c.TLSCert, c.TLSKey = "8080", "c.pem", "k.pem" }, "host:port"},
		{"insecure_no_auth", func(c *config.Config) {
			c.RedirectHTTP, c.TLSCert, c.TLSKey, c.InsecureNoAuth = ":8080", "c.pem", "k.pem", true
		}, "every listen address"},
		{"node_id", func(c *config.Config) { c.NodeID = "a b" }, "no spaces"},
		{"priority", func(c *config.Config) { c.Priority = -1 }, "between 0"},
		{"capacity", func(c *config.Config) { c.Capacity = 10001 }, "between 0"},
		{"weight", func(c *config.Config) { c.Weight = -1 }, "above 0"},
		{"dispatch.algorithm", func(c *config.Config) { c.Dispatch.Algorithm = "fastest" }, "round-robin, min-load, weighted-min-load, random"},
		{"shutdown_grace", func(c *config.Config) { c.ShutdownGrace = -time.Second }, "negative"},
		{"output_retention", func(c *config.Config) { c.OutputRetention = time.Second }, "at least 1m"},
		{"output_limit", func(c *config.Config) { c.OutputLimit = 10 }, "between 1024"},
		{"lease.profile", func(c *config.Config) { c.Lease.Profile = "lan" }, "fast, normal, wan"},
		{"clock_skew", func(c *config.Config) { c.ClockSkew = 25 * time.Hour }, "±24h"},
		{"failback_hold", func(c *config.Config) { c.FailbackHold = -time.Second }, "negative"},
		{"lease.ttl", func(c *config.Config) { c.Lease.TTL = 300 * time.Millisecond }, "twice lease.renew"},
		{"lease.margin", func(c *config.Config) { c.Lease.Margin = 2 * time.Second }, "less than lease.ttl"},
		{"heartbeat.interval", func(c *config.Config) { c.Heartbeat.Interval = 0 }, "positive"},
		{"heartbeat.max_missed", func(c *config.Config) { c.Heartbeat.MaxMissed = 0 }, "at least 1"},
		{"log.level", func(c *config.Config) { c.Log.Level = "loud" }, "debug, info, warn, error"},
		{"log.format", func(c *config.Config) { c.Log.Format = "xml" }, "text, json"},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			c := config.Default()
			tc.mod(&c)
			err := c.Finish()
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(err.Error(), tc.hint) {
				t.Fatalf("Finish = %v, want an error naming %s with %q", err, tc.field, tc.hint)
			}
		})
	}
	c := config.Default()
	c.Priority, c.Log.Format = -1, "xml"
	if err := c.Finish(); err == nil || !strings.Contains(err.Error(), "priority") || !strings.Contains(err.Error(), "log.format") {
		t.Fatalf("two bad settings: %v, want both named", err)
	}
}

// A password never reaches a log line.
func TestRedactedDB(t *testing.T) {
	c := config.Config{DB: "postgres://tandem:s3cret@db:5432/tandem"}
	if got := c.RedactedDB(); strings.Contains(got, "s3cret") || !strings.Contains(got, "tandem:xxxxx@db:5432") {
		t.Fatalf("RedactedDB = %q", got)
	}
}

// Every server configuration in examples/server/ loads and validates, so the README's
// worked example starts as written.
func TestExampleConfigurationsLoad(t *testing.T) {
	files, err := filepath.Glob("../../examples/server/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("examples/server: %v %v", files, err)
	}
	for _, f := range files {
		c, err := config.Load(f, map[string]string{})
		if err == nil {
			c.DataDir = t.TempDir()
			err = c.Finish()
		}
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
}
