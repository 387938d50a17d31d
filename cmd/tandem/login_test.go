package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A user logs in, changes their own password (the current one, then the new one, from
// stdin), keeps working with the new session saved in place of the old, and logs out:
// the session ends on the server and leaves the credentials file.
func TestLoginPasswdLogout(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, filepath.Join(dir, "data"))
	conf := filepath.Join(dir, "config")
	run := func(stdin string, args ...string) (string, error) {
		t.Helper()
		cmd := s.cli(exec.Command(binary, append(args, "--server", s.addr)...))
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, "XDG_CONFIG_HOME="+conf, "TANDEM_TOKEN=")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, err := run(stdin, args...)
		if err != nil {
			t.Fatalf("tandem %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	saved := func() map[string]struct{ Token, User string } {
		t.Helper()
		m := map[string]struct{ Token, User string }{}
		b, err := os.ReadFile(filepath.Join(conf, "tandem", "sessions.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	must("correct horse\n", "user", "add", "carol", "--role", "operator")
	must("correct horse\n", "login", "--user", "carol")
	if out := must("", "whoami"); !strings.Contains(out, "user carol (operator)") {
		t.Fatalf("whoami after login: %s", out)
	}
	first := saved()[s.addr].Token
	if out, err := run("wrong horse\nbattery staple\n", "passwd"); err == nil || !strings.Contains(out, "current password is wrong") {
		t.Fatalf("passwd with a wrong current password: %v %s", err, out)
	}
	if out := must("correct horse\nbattery staple\n", "passwd"); !strings.Contains(out, "password of carol changed") {
		t.Fatalf("passwd: %s", out)
	}
	second := saved()[s.addr].Token
	if second == "" || second == first {
		t.Fatal("no new session saved after the password change")
	}
	if out := must("", "whoami"); !strings.Contains(out, "user carol (operator)") {
		t.Fatalf("whoami after passwd: %s", out)
	}
	if out, err := run("", "whoami", "--token", first); err == nil || !strings.Contains(out, "unknown, revoked or expired") {
		t.Fatalf("the session before the change still works: %v %s", err, out)
	}
	if _, err := run("correct horse\n", "login", "--user", "carol"); err == nil {
		t.Fatal("the old password still logs in")
	}
	if out := must("", "logout"); !strings.Contains(out, "logged out") {
		t.Fatalf("logout: %s", out)
	}
	if _, ok := saved()[s.addr]; ok {
		t.Fatal("the session is still in the credentials file after logout")
	}
	if out, err := run("", "whoami", "--token", second); err == nil || !strings.Contains(out, "unknown, revoked or expired") {
		t.Fatalf("the session after logout: %v %s", err, out)
	}
	if out, err := run("", "logout"); err == nil || !strings.Contains(out, "no login is saved") {
		t.Fatalf("logout twice: %v %s", err, out)
	}
	if out := must("", "events", "--type", "user.logout"); !strings.Contains(out, "user carol logged out") {
		t.Fatalf("no user.logout event: %s", out)
	}
}
