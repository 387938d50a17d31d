package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/testutil"
)

// GET /api/v1/runs/{id}/live on any node answers what the running command wrote so far,
// read from the node that runs it.
func TestRunLiveOutputFromTheNodeRunningIt(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "shared.db")
	a := startServer(t, filepath.Join(dir, "a"), "--db", db, "--node-id", "a", "--priority", "0", "--capacity", "0")
	testutil.Wait(t, 30*time.Second, "a to be primary", func() bool { return status(t, a).Primary == "a" })
	startServer(t, filepath.Join(dir, "b"), "--db", db, "--node-id", "b", "--priority", "1")
	testutil.Wait(t, 30*time.Second, "b to stand by", func() bool { return modeOf(status(t, a), "b") == "standby" })
	c := apiClient(t, a)
	bg := context.Background()
	if _, err := c.JobApply(bg, []byte("name = \"chatty\"\n[command]\nargv = [\"sh\", \"-c\", \"echo so-far; echo warn >&2; sleep 30\"]\n"), "toml"); err != nil {
		t.Fatal(err)
	}
	run, err := c.JobRun(bg, "chatty")
	if err != nil {
		t.Fatal(err)
	}
	var lv api.LiveOutput
	testutil.Wait(t, 20*time.Second, "a to show b's live output", func() bool {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/v1/runs/%d/live", a.addr, run.ID), nil)
		req.Header.Set("Authorization", "Bearer "+adminToken(t, a))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		lv = api.LiveOutput{}
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&lv) == nil && lv.Live && strings.Contains(lv.Stderr, "warn")
	})
	if lv.Node != "b" || lv.State != "running" || lv.Stdout != "so-far\n" || lv.Stderr != "warn\n" {
		t.Fatalf("live output through a: %+v", lv)
	}
	if _, err := c.RunCancel(bg, run.ID); err != nil {
		t.Fatal(err)
	}
}
