package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/tandemhq/tandem/internal/testutil"
)

// TestConsoleScreenshots writes a PNG of every console page of a small busy cluster
// into $TANDEM_SCREENSHOTS (`make screenshots`: docs/console/). Skipped without it.
func TestConsoleScreenshots(t *testing.T) {
	out := os.Getenv("TANDEM_SCREENSHOTS")
	if out == "" {
		t.Skip("set TANDEM_SCREENSHOTS to a directory (make screenshots)")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "shared.db")
	a := startServer(t, filepath.Join(dir, "a"), "--db", db, "--node-id", "a", "--priority", "0", "--tags", "reports")
	testutil.Wait(t, 30*time.Second, "a to be primary", func() bool { return status(t, a).Primary == "a" })
	startServer(t, filepath.Join(dir, "b"), "--db", db, "--node-id", "b", "--priority", "1", "--tags", "reports")
	startServer(t, filepath.Join(dir, "c"), "--db", db, "--node-id", "c", "--priority", "2", "--capacity", "2")
	testutil.Wait(t, 30*time.Second, "b and c to stand by", func() bool {
		st := status(t, a)
		return modeOf(st, "b") == "standby" && modeOf(st, "c") == "standby"
	})
	tandem(t, a, "node", "standby", "c")
	tandem(t, a, "job", "apply", "-f", "../../examples/daily-sales.toml")
	if _, err := tandemErr(a, "rule", "apply", "-f", "../../examples/rules/server-down.toml"); err != nil {
		t.Logf("rules not applied: %v", err)
	}
	applyJob(t, a, dir, `
[[job]]
name = "warehouse-export"
schedule = ["30 2 * * MON-FRI"]
timezone = "America/New_York"
tags = ["reports"]
[job.command]
argv = ["sh", "-c", "echo exporting 2026-12 orders; echo wrote orders.parquet 1 of 3; sleep 120; echo done"]

[[job]]
name = "flaky-feed"
schedule = ["@every 1h"]
[job.command]
argv = ["sh", "-c", "echo fetching feed; echo 'feed unavailable: 503' >&2; exit 3"]

[[job]]
name = "gpu-render"
tags = ["gpu"]
[job.noop]
`)
	c := apiClient(t, a)
	bg := context.Background()
	for _, j := range []string{"sales-report", "sales-report", "flaky-feed", "warehouse-export", "gpu-render", "gpu-render"} {
		if _, err := c.JobRun(bg, j); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Wait(t, 30*time.Second, "the sales reports to succeed", func() bool { return succeeded(runs(t, a, "sales-report")) >= 2 })

	ctx := newBrowser(t)
	shoot := func(name string) {
		t.Helper()
		png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
		p := filepath.Join(out, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", p)
	}
	page := func(path, wait, name string) {
		t.Helper()
		do(t, ctx, 20*time.Second, "open "+path, chromedp.Navigate(a.addr+path), chromedp.WaitVisible(chromedp.CSS(wait)), chromedp.Sleep(1200*time.Millisecond))
		shoot(name)
	}
	page("/login", "#token", "login")
	do(t, ctx, 20*time.Second, "log in", chromedp.SendKeys(chromedp.ID("token"), adminToken(t, a)), chromedp.Click(chromedp.ID("login-submit")), chromedp.WaitVisible(chromedp.ID("status")))
	for _, r := range runs(t, a, "warehouse-export") {
		page(fmt.Sprintf("/runs/%d", r.ID), "#stdout", "run-live")
	}
	page("/", "#node-c", "status")
	do(t, ctx, 10*time.Second, "the stop dialog", chromedp.Click(chromedp.CSS(`#node-b a[data-action="stop"]`)), chromedp.WaitVisible(chromedp.ID("confirm")))
	shoot("status-dialog")
	do(t, ctx, 5*time.Second, "close it", chromedp.Click(chromedp.ID("confirm-cancel")), chromedp.WaitNotVisible(chromedp.ID("confirm")))
	page("/jobs", "#jobs", "jobs")
	page("/jobs/sales-report", "#definition", "job")
	do(t, ctx, 20*time.Second, "apply a bad job file",
		chromedp.Navigate(a.addr+"/apply"), chromedp.WaitVisible(chromedp.ID("file")),
		chromedp.SetValue(chromedp.ID("file"), "name = \"nightly\"\nschedule = [\"0 25 * * *\"]\n[noop]\n"),
		chromedp.Click(chromedp.ID("apply-submit")), chromedp.WaitVisible(chromedp.ID("file-error")))
	shoot("apply-error")
	page("/runs", "#runs", "runs")
	var id int64
	for _, r := range runs(t, a, "sales-report") {
		if r.State == "succeeded" {
			id = r.ID
		}
	}
	page(fmt.Sprintf("/runs/%d", id), "#stdout", "run")
	page("/events", "#events", "events")
	page("/deliveries", "#deliveries", "deliveries")
	page("/rules", "#rules", "rules")
	do(t, ctx, 5*time.Second, "the dark theme", func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return chromedp.Void{}, err
	})
	page("/", "#node-c", "status-dark")
	page(fmt.Sprintf("/runs/%d", id), "#stdout", "run-dark")
}
