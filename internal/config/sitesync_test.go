package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// [sitesync] loads from a file with its defaults, and every bad value is refused with
// an error naming its field.
func TestSiteSync(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("tdm_secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "tandem.toml")
	if err := os.WriteFile(file, []byte(`
data_dir = "`+dir+`"
[sitesync]
target = ["https://dr-a:8200", "https://dr-b:8200"]
token_file = "`+tok+`"
substitute = [{ from = "10.0.0.5", to = "10.9.0.5" }, { from = "reports.prod", to = "reports.dr" }]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	s := c.SiteSync
	if !s.Enabled() || s.Token != "tdm_secret" || s.Mode != SiteSyncModeAutomatic || s.MaxFailures != 5 || s.StartAfterSync ||
		s.Timeout != 10*time.Second || len(s.Substitute) != 2 || s.Substitute[1].To != "reports.dr" || s.ChangeKeep != ChangeKeepDefault {
		t.Fatalf("sitesync %+v", s)
	}
	bad := []struct {
		mod   func(*SiteSync)
		field string
	}{
		{func(s *SiteSync) { s.Target = []string{"dr-a:8200"} }, "sitesync.target"},
		{func(s *SiteSync) { s.Token = "" }, "sitesync.token_file"},
		{func(s *SiteSync) { s.Mode = "sometimes" }, "sitesync.mode"},
		{func(s *SiteSync) { s.Timeout = 0 }, "sitesync.timeout"},
		{func(s *SiteSync) { s.MaxFailures = 0 }, "sitesync.max_failures"},
		{func(s *SiteSync) { s.Batch = 0 }, "sitesync.batch"},
		{func(s *SiteSync) { s.Substitute = []Substitution{{From: "", To: "x"}} }, "sitesync.substitute"},
		{func(s *SiteSync) { s.ChangeRetention = time.Minute }, "sitesync.change_retention"},
	}
	for _, b := range bad {
		c2 := c
		c2.SiteSync.Substitute = append([]Substitution(nil), c.SiteSync.Substitute...)
		b.mod(&c2.SiteSync)
		err := c2.Validate()
		if err == nil || !strings.Contains(err.Error(), "config "+b.field+":") {
			t.Errorf("%s: %v", b.field, err)
		}
	}
	c3 := Default()
	c3.SiteSync.TokenFile = filepath.Join(dir, "missing")
	if err := c3.Finish(); err == nil || !strings.Contains(err.Error(), "sitesync.token_file") {
		t.Errorf("a missing token file: %v", err)
	}
}
