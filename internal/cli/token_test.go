package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// The token a client command sends: --token, else TANDEM_TOKEN, else the login saved
// for the server, else the bootstrap token of $TANDEM_DATA_DIR (else ./tandem-data).
func TestTokenLookupOrder(t *testing.T) {
	cfg, data := t.TempDir(), t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	t.Setenv("HOME", cfg)
	t.Setenv("TANDEM_TOKEN", "")
	t.Setenv("TANDEM_DATA_DIR", data)
	g := &globals{servers: []string{"127.0.0.1:8200"}}
	if got := g.resolveToken(); got != "" {
		t.Fatalf("nothing anywhere: %q", got)
	}
	if err := os.WriteFile(filepath.Join(data, "admin.token"), []byte("tdm_boot\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := g.resolveToken(); got != "tdm_boot" {
		t.Fatalf("bootstrap: %q", got)
	}
	if _, err := saveSessions(map[string]session{"http://127.0.0.1:8200": {Token: "tdm_login", User: "alice"}}); err != nil {
		t.Fatal(err)
	}
	if got := g.resolveToken(); got != "tdm_login" {
		t.Fatalf("login: %q", got)
	}
	if got := (&globals{servers: []string{"http://other:8200"}}).resolveToken(); got != "tdm_boot" {
		t.Fatalf("a login for another server was used: %q", got)
	}
	if fi, err := os.Stat(filepath.Join(cfg, "tandem", "sessions.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("sessions file: %v %v", fi, err)
	}
	t.Setenv("TANDEM_TOKEN", "tdm_env")
	if got := g.resolveToken(); got != "tdm_env" {
		t.Fatalf("env: %q", got)
	}
	g.token = "tdm_flag"
	if got := g.resolveToken(); got != "tdm_flag" {
		t.Fatalf("flag: %q", got)
	}
}
