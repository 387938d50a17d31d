package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, l+"\n") {
			t.Errorf("no line %q in:\n%s", l, text)
		}
	}
}

// What a node records shows in the scrape, on its own registry.
func TestMetrics(t *testing.T) {
	now := time.Now()
	m := New(prometheus.NewRegistry(), Options{Version: "1.2.3", Node: "a", Cluster: func(context.Context) (Cluster, error) {
		return Cluster{Nodes: map[string]int{"primary": 1, "standby": 2}, Queued: 7, OldestQueued: now.Add(-3 * time.Second),
			Now: now, Underreplicated: 4}, nil
	}})
	m.Takeover(80 * time.Millisecond)
	m.Elected(5)
	m.Fired("run-once", []time.Duration{2 * time.Millisecond, 3 * time.Millisecond}, 0)
	m.Fired("skip", nil, 3)
	m.RunEnded("report", "succeeded", time.Second)
	m.RunEnded("report", "failed", time.Second)
	m.Delivered("webhook", "delivered")
	text := scrape(t, m)
	wantLines(t, text,
		`tandem_build_info{node="a",version="1.2.3"} 1`,
		`tandem_is_primary 1`, `tandem_lease_epoch 5`, `tandem_leader_changes_total 1`,
		`tandem_takeover_seconds_count 1`, `tandem_schedule_lateness_seconds_count 2`,
		`tandem_schedule_missed_total{policy="skip"} 3`,
		`tandem_runs_total{state="succeeded"} 1`, `tandem_runs_total{state="failed"} 1`,
		`tandem_run_duration_seconds_count 2`,
		`tandem_deliveries_total{channel="webhook",outcome="delivered"} 1`,
		`tandem_nodes{mode="primary"} 1`, `tandem_nodes{mode="standby"} 2`, `tandem_nodes{mode="lost"} 0`,
		`tandem_runs_queued 7`, `tandem_queue_oldest_age_seconds 3`, `tandem_outputs_underreplicated 4`,
		`tandem_cluster_scrape_error 0`)
	if strings.Contains(text, `job="report"`) {
		t.Error("job labels without metrics.job_labels")
	}
	m.Deposed()
	wantLines(t, scrape(t, m), `tandem_is_primary 0`, `tandem_lease_epoch 0`)
}

// Job labels are opt-in; a repository that cannot be read is said, not hidden.
func TestJobLabelsAndScrapeError(t *testing.T) {
	m := New(prometheus.NewRegistry(), Options{JobLabels: true, Cluster: func(context.Context) (Cluster, error) {
		return Cluster{}, errors.New("down")
	}})
	m.RunEnded("report", "succeeded", time.Second)
	wantLines(t, scrape(t, m), `tandem_runs_total{job="report",state="succeeded"} 1`,
		`tandem_run_duration_seconds_count{job="report"} 1`, `tandem_cluster_scrape_error 1`)
}
