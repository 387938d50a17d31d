package main_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/testutil"
)

// GET /metrics on a real server: refused without a token, and with the bootstrap admin
// token it shows the node primary and the attempt it ran.
func TestMetricsEndpoint(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, filepath.Join(dir, "data"))
	resp, err := http.Get(s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /metrics without a token: %s, want 401", resp.Status)
	}
	tok, err := os.ReadFile(filepath.Join(s.tokenDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	applyJob(t, s, dir, "[[job]]\nname = \"m\"\n[job.command]\nargv = [\"true\"]\n")
	tandem(t, s, "run", "m")
	scrape := func() string {
		req, _ := http.NewRequest("GET", s.addr+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %s: %s", resp.Status, b)
		}
		return string(b)
	}
	var text string
	testutil.Wait(t, 30*time.Second, "the run to be counted", func() bool {
		text = scrape()
		return strings.Contains(text, `tandem_runs_total{state="succeeded"} 1`+"\n")
	})
	for _, want := range []string{"tandem_is_primary 1\n", "tandem_leader_changes_total 1\n", `tandem_nodes{mode="primary"} 1` + "\n",
		"tandem_runs_queued 0\n", "tandem_cluster_scrape_error 0\n", "tandem_run_duration_seconds_count 1\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in /metrics:\n%s", want, text)
		}
	}
}
