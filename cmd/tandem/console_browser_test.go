package main_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/client"
	"github.com/tandemhq/tandem/internal/testutil"
)

// chromiumPath is Debian's Chromium, which the browser tests drive.
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts a headless Chromium with a fresh profile for the test. When the
// test fails, the page it was on is saved as a PNG under the test's temporary
// directory (the path is logged; set TANDEM_TEST_SCREENSHOTS to a directory to keep it
// after the test).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no %s (.ci/run installs Debian's chromium): %v", chromiumPath, err)
		}
		t.Skipf("no %s: apt-get install -y chromium", chromiumPath)
	}
	shots := cmp.Or(os.Getenv("TANDEM_TEST_SCREENSHOTS"), t.TempDir())
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1500, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		if t.Failed() {
			sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
			if png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100)); err == nil {
				p := filepath.Join(shots, strings.ReplaceAll(t.Name(), "/", "_")+".png")
				if err := os.WriteFile(p, png, 0o644); err == nil {
					t.Logf("screenshot of the failing page: %s", p)
				}
			}
			scancel()
		}
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs browser actions, failing the test after within.
func do(t *testing.T, ctx context.Context, within time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one browser action that gives a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// adminToken is the bootstrap admin token of s's repository.
func adminToken(t *testing.T, s *server) string {
	t.Helper()
	dir := s.tokenDir
	if dir == "" {
		dir = filepath.Join(s.workDir, "tandem-data")
	}
	tok, err := auth.ReadBootstrapToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func apiClient(t *testing.T, s *server) *client.Client {
	return client.NewConfig(client.Config{Servers: []string{s.addr}, Token: adminToken(t, s)})
}

// loginToken logs the browser in to s's console with a token.
func loginToken(t *testing.T, ctx context.Context, s *server, tok string) {
	t.Helper()
	do(t, ctx, 20*time.Second, "log in with the admin token",
		chromedp.Navigate(s.addr+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), tok),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("status")))
}

// Log in, watch the status table of a three-process cluster, kill -9 the primary and
// see the new primary without a reload, then switch the role through the dialog.
func TestConsoleClusterStatusFailoverAndSwitch(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "shared.db")
	a := startServer(t, filepath.Join(dir, "a"), "--db", db, "--node-id", "a", "--priority", "0")
	testutil.Wait(t, 30*time.Second, "a to be primary", func() bool { return status(t, a).Primary == "a" })
	b := startServer(t, filepath.Join(dir, "b"), "--db", db, "--node-id", "b", "--priority", "1")
	startServer(t, filepath.Join(dir, "c"), "--db", db, "--node-id", "c", "--priority", "2")
	testutil.Wait(t, 30*time.Second, "b and c to stand by", func() bool {
		st := status(t, a)
		return modeOf(st, "b") == "standby" && modeOf(st, "c") == "standby"
	})
	ctx := newBrowser(t)
	// b's console: it stays up when a dies.
	loginToken(t, ctx, b, adminToken(t, a))
	do(t, ctx, 10*time.Second, "the three rows, a primary",
		chromedp.WaitVisible(chromedp.CSS(`#node-a[data-mode="primary"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#node-b[data-mode="standby"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#node-c[data-mode="standby"]`)))
	if p := get(t, ctx, "the primary shown", chromedp.Text(chromedp.ID("primary"))); p != "a" {
		t.Fatalf("primary shown: %q", p)
	}
	// Mark the page: a reload would lose the mark.
	get(t, ctx, "mark the page", chromedp.Evaluate[bool](`window.notReloaded = true`))

	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	do(t, ctx, 2*time.Second, "the new primary b in the table within 2 s of the kill, without a reload",
		chromedp.WaitVisible(chromedp.CSS(`#node-b[data-mode="primary"]`)))
	took := time.Since(killed)
	still := get(t, ctx, "the mark", chromedp.Evaluate[bool](`window.notReloaded === true`))
	if p := get(t, ctx, "the primary shown", chromedp.Text(chromedp.ID("primary"))); !still || p != "b" {
		t.Fatalf("after the kill: reloaded %v, primary shown %q", !still, p)
	}
	t.Logf("the table showed b primary %s after a's kill -9", took.Round(time.Millisecond))

	// Switch to c through the dialog: it says what will happen; Escape closes it.
	do(t, ctx, 10*time.Second, "open the switch dialog",
		chromedp.Click(chromedp.CSS(`#node-c a[data-action="switch"]`)),
		chromedp.WaitVisible(chromedp.ID("confirm")))
	if text := get(t, ctx, "the dialog's text", chromedp.Text(chromedp.ID("confirm-text"))); !strings.Contains(text, "hands the primary role to c") {
		t.Fatalf("the switch dialog says %q", text)
	}
	if f := get(t, ctx, "focus", chromedp.Evaluate[string](`document.activeElement.id`)); f != "confirm-cancel" {
		t.Errorf("focus in the dialog: %q, want confirm-cancel", f)
	}
	do(t, ctx, 5*time.Second, "Escape closes the dialog",
		chromedp.KeyEvent("\x1b"),
		chromedp.WaitNotVisible(chromedp.ID("confirm")))
	if st := status(t, b); st.Primary != "b" {
		t.Fatalf("Escape switched anyway: the primary is %q", st.Primary)
	}
	do(t, ctx, 15*time.Second, "switch through the dialog",
		chromedp.Click(chromedp.CSS(`#node-c a[data-action="switch"]`)),
		chromedp.WaitVisible(chromedp.ID("confirm-ok")),
		chromedp.Click(chromedp.ID("confirm-ok")),
		chromedp.WaitVisible(chromedp.CSS(`#node-c[data-mode="primary"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#node-b[data-mode="standby"]`)))
	if st := status(t, b); st.Primary != "c" {
		t.Fatalf("after the switch the primary is %q", st.Primary)
	}
}

// A viewer sees no action buttons, and a POST it forges from its page is refused.
func TestConsoleViewerHasNoActions(t *testing.T) {
	s := startServer(t, "")
	if _, err := apiClient(t, s).UserAdd(context.Background(), "vera", "viewer", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	ctx := newBrowser(t)
	do(t, ctx, 20*time.Second, "log in as a viewer",
		chromedp.Navigate(s.addr+"/login"),
		chromedp.SendKeys(chromedp.ID("user"), "vera"),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse battery"),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("node-n1")),
		chromedp.Sleep(1500*time.Millisecond)) // a push or two of the live table
	who := get(t, ctx, "who", chromedp.Text(chromedp.ID("whoami")))
	buttons := get(t, ctx, "buttons", chromedp.Evaluate[int](`document.querySelectorAll("a[data-confirm-path], #main form[method=post]").length`))
	if buttons != 0 || who != "user vera (viewer)" {
		t.Fatalf("viewer %q sees %d action buttons", who, buttons)
	}
	code := get(t, ctx, "forge a POST", chromedp.Evaluate[int](`(async () => {
		const csrf = document.querySelector("input[name=csrf]").value;
		const r = await fetch("/nodes/n1/suspend", {method: "POST", body: new URLSearchParams({csrf: csrf})});
		return r.status;
	})()`, chromedp.EvalAwaitPromise))
	if code != 403 {
		t.Fatalf("a viewer's forged POST: %d, want 403", code)
	}
	if st := status(t, s); st.Suspended != nil {
		t.Fatalf("suspended by a viewer's POST: %+v", st.Suspended)
	}
}

// Applying a job file with an error shows the error next to the file, naming the field.
func TestConsoleApplyShowsFieldError(t *testing.T) {
	s := startServer(t, "")
	ctx := newBrowser(t)
	loginToken(t, ctx, s, adminToken(t, s))
	do(t, ctx, 20*time.Second, "apply a bad job file",
		chromedp.Navigate(s.addr+"/apply"),
		chromedp.WaitVisible(chromedp.ID("file")),
		chromedp.SetValue(chromedp.ID("file"), "name = \"bad\"\nschedule = [\"@every 1m\"]\ntimeout = \"0s\"\n[noop]\n"),
		chromedp.Click(chromedp.ID("apply-submit")),
		chromedp.WaitVisible(chromedp.ID("file-error")))
	msg := get(t, ctx, "the error", chromedp.Text(chromedp.ID("file-error")))
	invalid := get(t, ctx, "aria-invalid", chromedp.AttributeValue(chromedp.ID("file"), "aria-invalid"))
	desc := get(t, ctx, "aria-describedby", chromedp.AttributeValue(chromedp.ID("file"), "aria-describedby"))
	if !strings.HasPrefix(msg, "timeout (line 3): ") || invalid.Value != "true" || desc.Value != "file-error" {
		t.Fatalf("error shown: %q (aria-invalid %q, described by %q)", msg, invalid.Value, desc.Value)
	}
}

// Bulk cancel of 50 queued runs: the confirmation shows the count; they are canceled.
func TestConsoleBulkCancel(t *testing.T) {
	s := startServer(t, "")
	c := apiClient(t, s)
	bg := context.Background()
	if _, err := c.JobApply(bg, []byte("name = \"stuck\"\ntags = [\"nowhere\"]\n[noop]\n"), "toml"); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, err := c.JobRun(bg, "stuck"); err != nil {
			t.Fatal(err)
		}
	}
	ctx := newBrowser(t)
	loginToken(t, ctx, s, adminToken(t, s))
	do(t, ctx, 20*time.Second, "open the bulk cancel",
		chromedp.Navigate(s.addr+"/runs?job=stuck&state=queued"),
		chromedp.WaitVisible(chromedp.CSS(`a[data-action="bulk-cancel"]`)),
		chromedp.Click(chromedp.CSS(`a[data-action="bulk-cancel"]`)),
		chromedp.WaitVisible(chromedp.ID("confirm")))
	title := get(t, ctx, "the dialog's title", chromedp.Text(chromedp.ID("confirm-title")))
	do(t, ctx, 20*time.Second, "confirm", chromedp.Click(chromedp.ID("confirm-ok")), chromedp.WaitVisible(chromedp.ID("flash")))
	flash := get(t, ctx, "the message", chromedp.Text(chromedp.ID("flash")))
	if title != "Cancel 50 runs?" || flash != "50 runs canceled" {
		t.Fatalf("dialog %q, then %q", title, flash)
	}
	n := 0
	for _, r := range runs(t, s, "stuck") {
		if r.State == "canceled" {
			n++
		}
	}
	if n != 50 {
		t.Fatalf("%d of 50 runs canceled", n)
	}
}

// A run's stdout appears on its page while it runs (read from its worker), and the
// page shows the end without a reload.
func TestConsoleRunStdoutWhileRunning(t *testing.T) {
	s := startServer(t, "")
	c := apiClient(t, s)
	bg := context.Background()
	if _, err := c.JobApply(bg, []byte("name = \"talky\"\n[command]\nargv = [\"sh\", \"-c\", \"echo first-line; sleep 5; echo last-line\"]\n"), "toml"); err != nil {
		t.Fatal(err)
	}
	run, err := c.JobRun(bg, "talky")
	if err != nil {
		t.Fatal(err)
	}
	ctx := newBrowser(t)
	loginToken(t, ctx, s, adminToken(t, s))
	do(t, ctx, 10*time.Second, "open the run", chromedp.Navigate(fmt.Sprintf("%s/runs/%d", s.addr, run.ID)), chromedp.WaitVisible(chromedp.ID("stdout")))
	get(t, ctx, "first-line on the page while the run runs", chromedp.Poll[bool](
		`document.getElementById("stdout").textContent.includes("first-line") && document.getElementById("run-state").textContent.startsWith("running")`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(8*time.Second)))
	if r, err := c.RunGet(bg, run.ID); err != nil || r.State != "running" {
		t.Fatalf("the run was no longer running when its stdout showed: %+v %v", r, err)
	}
	get(t, ctx, "the end shown without a reload", chromedp.Poll[bool](
		`document.getElementById("run-state").textContent.startsWith("succeeded") && document.getElementById("stdout").textContent.includes("last-line")`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
}
