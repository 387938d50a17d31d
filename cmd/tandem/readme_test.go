package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/testutil"
	"github.com/tandemhq/tandem/internal/testutil/mailtest"
)

// readmeBlock returns the command lines of the first ```sh block after heading in the
// README, without their comments.
func readmeBlock(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README: no heading %q", heading)
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatalf("README: no sh block after %q", heading)
	}
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		}
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// The README's worked example, word for word, with authentication on as it always is: a
// server started with no configuration in a directory (./tandem-data), and the README's
// commands run by a shell in that directory, with nothing but TANDEM_SERVER to name the
// server's port (the test's server listens on a free one, not 8200). The CLI finds the
// bootstrap admin token as the README says.
func TestWorkedExampleWordForWord(t *testing.T) {
	t.Parallel()
	lines := readmeBlock(t, "## A worked example: a CSV report every minute")
	if len(lines) < 8 || lines[0] != "./tandem job apply -f examples/daily-sales.toml" {
		t.Fatalf("the worked example changed; update this test: %q", lines)
	}
	s := startServer(t, "")
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(examples, filepath.Join(s.workDir, "examples")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary, filepath.Join(s.workDir, "tandem")); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TANDEM_SERVER=" + s.addr}
	sh := func(line string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", line)
		cmd.Dir, cmd.Env = s.workDir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, line := range lines {
		if strings.Contains(line, "runs show 1") {
			testutil.Wait(t, 75*time.Second, "run 1 to succeed", func() bool {
				out, err := sh("./tandem runs --json")
				var rs []run
				if err != nil || json.Unmarshal([]byte(out), &rs) != nil {
					t.Fatalf("runs: %v %s", err, out)
				}
				for _, r := range rs {
					if r.ID == 1 && r.State == "succeeded" {
						return true
					}
				}
				return false
			})
		}
		out, err := sh(line)
		// The example forbids overlap: an on-demand run that meets the minute's scheduled
		// one is skipped and says so; asked again, it runs.
		for i := 0; err != nil && strings.Contains(line, "--wait") && strings.Contains(out, "skipped") && i < 3; i++ {
			out, err = sh(line)
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		t.Logf("$ %s\n%s", line, out)
		// What each line shows, the first that fits (the --dir line before the one
		// without).
		for _, c := range [][2]string{{"job apply", "job sales-report created"}, {"job list", "sales-report"},
			{"runs show 1", "report written for run 1"}, {"runs output 1 --dir", "saved reports/sales.csv"},
			{"runs output 1", "region,amount,generated_at\n"}, {"run sales-report --wait", "succeeded"}, {"status", "primary"}} {
			if strings.Contains(line, c[0]) {
				if !strings.Contains(out, c[1]) {
					t.Fatalf("%s: want %q in\n%s", line, c[1], out)
				}
				break
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(s.workDir, "reports", "sales.csv")); err != nil || !strings.HasPrefix(string(b), "region,") {
		t.Fatalf("reports/sales.csv: %v %q", err, b)
	}
	// What the server made in ./tandem-data is its user's only.
	data := filepath.Join(s.workDir, "tandem-data")
	for _, p := range []string{data, filepath.Join(data, "tandem.db"), filepath.Join(data, "admin.token"), filepath.Join(data, "secret.key"), filepath.Join(data, "outputs")} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v, want it owner-only", p, err)
		}
	}
}

// The README's users, tokens and secrets commands, word for word, in order, on one
// server: the CLI sends the bootstrap admin token, then alice's session once she logs
// in, then the admin's again once she logs out. Passwords come on stdin, as the README
// says they may.
func TestUsersAndSecretsWordForWord(t *testing.T) {
	t.Parallel()
	users := readmeBlock(t, "## Users, roles and tokens")
	secrets := readmeBlock(t, "### Secrets")
	s := startServer(t, "")
	if err := os.Symlink(binary, filepath.Join(s.workDir, "tandem")); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TANDEM_SERVER=" + s.addr, "DB_PASSWORD=db-Pa55-readme"}
	stdin := map[string]string{
		"./tandem user add alice --role viewer": "correct horse\n",
		"./tandem login --user alice":           "correct horse\n",
		"./tandem passwd":                       "correct horse\nbattery staple\n",
		"./tandem user passwd alice":            "staple battery\n",
	}
	shows := map[string]string{
		"./tandem token create ci --role operator --expires 30d": "tdm_",
		"./tandem token list":        "ci",
		"./tandem token revoke ci":   "token ci revoked",
		"./tandem whoami":            "user alice (viewer)",
		"./tandem passwd":            "password of alice changed",
		"./tandem logout":            "logged out",
		"./tandem user list":         "alice",
		"./tandem user delete alice": "user alice deleted",
		"./tandem secret list":       "DB_PASSWORD",
	}
	for _, line := range append(users, secrets...) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, "sh", "-c", line)
		cmd.Dir, cmd.Env, cmd.Stdin = s.workDir, env, strings.NewReader(stdin[line])
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		t.Logf("$ %s\n%s", line, out)
		if w, ok := shows[line]; ok && !strings.Contains(string(out), w) {
			t.Fatalf("%s: want %q in\n%s", line, w, out)
		}
		if strings.Contains(string(out), "db-Pa55-readme") {
			t.Fatalf("%s shows the secret's value", line)
		}
	}
	if len(users) < 11 || len(secrets) != 3 {
		t.Fatalf("the README's blocks changed; update this test: %q %q", users, secrets)
	}
}

var dayDir = regexp.MustCompile(`(?m)^\d{4}-\d{2}-\d{2}$`)

// The README's "Delivering it" commands, word for word: the server started as written
// (with only TANDEM_LISTEN picking a free port, and TANDEM_SERVER telling the client),
// a mail catcher on port 1025 as examples/server/smtp.toml expects, and the mail and
// the directory copy delivered as the README says.
func TestDeliveredExampleWordForWord(t *testing.T) {
	lines := readmeBlock(t, "### Delivering it: email and a directory")
	if len(lines) != 6 || lines[0] != "./tandem server --config examples/server/smtp.toml" {
		t.Fatalf("the README's block changed; update this test: %q", lines)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:1025")
	if err != nil {
		t.Skipf("the example's mail catcher port 1025 is taken on this host: %v", err)
	}
	box := &mailtest.Box{}
	srv := smtp.NewServer(box)
	srv.Domain = "localhost"
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	const out = "/tmp/tandem-reports/sales-report-delivered"
	_ = os.RemoveAll(out)
	t.Cleanup(func() { _ = os.RemoveAll(out) })

	work := t.TempDir()
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{examples: "examples", binary: "tandem"} {
		if err := os.Symlink(from, filepath.Join(work, to)); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if g := os.Getenv("TANDEM_TEST_GUARD_EXE"); g != "" {
		base = append(base, "TANDEM_TEST_GUARD_EXE="+g)
	}
	args := strings.Fields(lines[0])
	server := exec.Command(filepath.Join(work, "tandem"), args[1:]...)
	server.Dir, server.Env = work, append(base, "TANDEM_LISTEN=127.0.0.1:0")
	stderr, err := server.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	t.Cleanup(func() {
		_ = server.Process.Signal(syscall.SIGTERM)
		<-done
		_ = server.Wait()
	})
	var url string
	select {
	case url = <-addr:
	case <-time.After(60 * time.Second):
		t.Fatal("the server did not start")
	}
	env := append(base, "TANDEM_SERVER="+url)
	sh := func(line string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		run := func() ([]byte, error) {
			cmd := exec.CommandContext(ctx, "sh", "-c", line)
			cmd.Dir, cmd.Env = work, env
			return cmd.CombinedOutput()
		}
		b, err := run()
		// The example forbids overlap: an on-demand run that meets the minute's scheduled
		// one is skipped and says so; asked again, it runs.
		for i := 0; err != nil && strings.Contains(line, "--wait") && strings.Contains(string(b), "skipped") && i < 3; i++ {
			b, err = run()
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, b)
		}
		t.Logf("$ %s\n%s", line, b)
		return string(b)
	}
	for _, line := range lines[1:] {
		if line == "./tandem deliveries" {
			testutil.Wait(t, 60*time.Second, "the email and the directory copy delivered", func() bool {
				var ds []api.Delivery
				if err := json.Unmarshal([]byte(sh("./tandem deliveries --json")), &ds); err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, d := range ds {
					if d.Run == 1 && d.State == "delivered" {
						n++
					}
				}
				return n == 2
			})
		}
		got := sh(line)
		for _, c := range [][2]string{{"job apply", "job sales-report-delivered created"}, {"--wait", "succeeded"},
			{"deliveries show 1", "delivered"}, {"./tandem deliveries", "directory"}, {"ls ", "-"}} {
			if strings.Contains(line, c[0]) {
				if !strings.Contains(got, c[1]) || (c[0] == "ls " && !dayDir.MatchString(got)) {
					t.Fatalf("%s: want %q in\n%s", line, c[1], got)
				}
				break
			}
		}
	}
	mails := box.Mails()
	if len(mails) == 0 || !strings.Contains(mails[0], "sales.csv") || !strings.Contains(mails[0], "sales-leads@example.com") {
		t.Fatalf("mails: %q", mails)
	}
}
