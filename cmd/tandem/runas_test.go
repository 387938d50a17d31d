package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A real server, as root, with run_as a throwaway user: a command job runs under the
// guard as that user; its output directory is that user's while it runs (and root's
// once recorded); it cannot list the data directory nor read the SQLite file, the
// bootstrap token or the secret key (owner-only); and nothing of the server's
// environment reaches it, neither in its own environment nor through /proc (the guard's
// is its own clean one, the server's is not readable). CI runs as root; elsewhere the
// test says why it skips.
func TestRunAsThrowawayUserEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("run_as end to end: needs root to switch users (CI runs this as root)")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("run_as end to end: no useradd on this host to make a throwaway user")
	}
	name := "tdme2e" + strconv.Itoa(os.Getpid()%100000)
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/false", name).CombinedOutput(); err != nil {
		t.Skipf("run_as end to end: useradd %s: %v %s", name, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	// The server's own secrets, in its environment.
	t.Setenv("PGPASSWORD", "pg-e2e-Pa55word")
	t.Setenv("TANDEM_E2E_SERVER_SECRET", "server-only-e2e-value")
	dir := t.TempDir()
	// The user must reach its output directory (the data directory's parents are the
	// test's) and run the guard (the test's build of tandem).
	for d := dir; d != "/tmp" && d != "/" && len(d) > 1; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o711)
	}
	if g := os.Getenv("TANDEM_TEST_GUARD_EXE"); g != "" {
		_ = os.Chmod(filepath.Dir(g), 0o711)
	}
	data := filepath.Join(dir, "data")
	conf := filepath.Join(dir, "server.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("run_as = %q\n", name)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, data, "--config", conf)
	for _, l := range s.logLines() {
		if strings.Contains(l, "command jobs run as root too") {
			t.Fatalf("the server warns of jobs run as root although run_as is set: %s", l)
		}
	}
	applyJob(t, s, dir, fmt.Sprintf(`
name = "as-user"
[command]
shell = true
argv = ['''
echo "uid $(id -u) gid $(id -g)"
echo "outdir owner $(stat -c %%u "$TANDEM_OUTPUT_DIR")"
echo made > "$TANDEM_OUTPUT_DIR/made.txt"
ls "$DATA" >/dev/null 2>&1 && echo "LISTED data dir" || echo "cannot list data dir"
for f in tandem.db admin.token secret.key; do cat "$DATA/$f" >/dev/null 2>&1 && echo "READ $f" || echo "cannot read $f"; done
env | grep -q -e PGPASSWORD -e TANDEM_E2E_SERVER_SECRET && echo "SERVER ENV in env" || echo "clean env"
tr '\0' '\n' < /proc/$PPID/environ | grep -q -e PGPASSWORD -e TANDEM_E2E_SERVER_SECRET && echo "SERVER ENV in guard" || echo "guard env clean"
spid=$(awk '/^PPid/ {print $2}' /proc/$PPID/status)
cat /proc/$spid/environ >/dev/null 2>&1 && echo "READ server environ" || echo "cannot read server environ"
''']
env = { DATA = %q }
`, data))
	out, err := tandemErr(s, "run", "as-user", "--wait", "--timeout", "60s")
	if err != nil {
		t.Fatalf("run: %v %s", err, out)
	}
	var rs []struct {
		ID     int64  `json:"id"`
		Stdout string `json:"stdout"`
		Stderr string `json:"stderr"`
	}
	if err := json.Unmarshal([]byte(tandem(t, s, "runs", "--json")), &rs); err != nil || len(rs) != 1 {
		t.Fatalf("runs: %v %+v", err, rs)
	}
	var shown struct {
		Stdout string `json:"stdout"`
		Stderr string `json:"stderr"`
	}
	if err := json.Unmarshal([]byte(tandem(t, s, "runs", "show", fmt.Sprint(rs[0].ID), "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("uid %s gid %s", u.Uid, u.Gid),
		"outdir owner " + u.Uid,
		"cannot list data dir", "cannot read tandem.db", "cannot read admin.token", "cannot read secret.key",
		"clean env", "guard env clean", "cannot read server environ",
	}
	for _, w := range want {
		if !strings.Contains(shown.Stdout, w+"\n") {
			t.Errorf("the job's output lacks %q:\nstdout %s\nstderr %s", w, shown.Stdout, shown.Stderr)
		}
	}
	// Recorded, the outputs are root's again: the job's user cannot change them.
	var made string
	_ = filepath.WalkDir(filepath.Join(data, "outputs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "made.txt" {
			made = p
		}
		return nil
	})
	fi, err := os.Stat(made)
	if err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatalf("made.txt %q: %v, want it kept and owned by root", made, err)
	}
	if out := tandem(t, s, "runs", "output", fmt.Sprint(rs[0].ID), "made.txt"); out != "made\n" {
		t.Fatalf("output: %q", out)
	}
}
