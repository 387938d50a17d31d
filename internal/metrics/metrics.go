// Package metrics is a node's Prometheus metrics: what the node itself saw (its terms as
// primary, the firings and runs it made, the deliveries it sent) as counters and
// histograms, and the cluster's state (nodes by mode, the queue, outputs short of
// copies) read from the repository when scraped. Everything is registered on the
// registry given to New: no global state, so tests and several nodes in one process
// each have their own.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options shape the metrics.
type Options struct {
	Version string // tandem_build_info's version label
	Node    string // tandem_build_info's node label
	// JobLabels adds a job label to tandem_runs_total and tandem_run_duration_seconds
	// (metrics.job_labels). Off by default: one series per job can be many.
	JobLabels bool
	// Cluster reads the cluster's state at scrape time; nil leaves those gauges out.
	Cluster func(ctx context.Context) (Cluster, error)
	// ScrapeTimeout bounds Cluster; default 5s.
	ScrapeTimeout time.Duration
}

// Cluster is the state the gauges read from the repository at scrape time.
type Cluster struct {
	Nodes           map[string]int // live and down nodes by mode
	Queued          int            // runs waiting for a node
	OldestQueued    time.Time      // creation of the oldest queued run; zero if none
	Underreplicated int            // outputs short of their copies
	Now             time.Time      // the repository's clock, for the age
}

// Metrics are one node's metrics.
type Metrics struct {
	o   Options
	reg *prometheus.Registry

	isPrimary     prometheus.Gauge
	epoch         prometheus.Gauge
	leaderChanges prometheus.Counter
	takeover      prometheus.Histogram
	lateness      prometheus.Histogram
	missed        *prometheus.CounterVec
	runs          *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	deliveries    *prometheus.CounterVec
	syncLag       prometheus.Gauge
}

// Mode labels of tandem_nodes that are always present (0 when no node is in them).
var modes = []string{"primary", "standby", "held", "suspended", "worker", "draining", "stopped", "lost"}

// New registers a node's metrics on reg (a fresh prometheus.NewRegistry() in a server).
func New(reg *prometheus.Registry, o Options) *Metrics {
	o.ScrapeTimeout = max(o.ScrapeTimeout, 0)
	if o.ScrapeTimeout == 0 {
		o.ScrapeTimeout = 5 * time.Second
	}
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{o: o, reg: reg}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_build_info",
		Help:        "Always 1; its labels say which tandem this node runs.",
		ConstLabels: prometheus.Labels{"version": o.Version, "node": o.Node}})
	build.Set(1)
	f(build)
	m.isPrimary = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_is_primary",
		Help: "1 while this node holds the primary lease, else 0."})
	m.epoch = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_lease_epoch",
		Help: "The epoch of this node's term as primary (the fencing token); 0 when it is not primary."})
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_leader_changes_total",
		Help: "Times this node became primary."})
	m.takeover = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tandem_takeover_seconds",
		Help:    "From this node seeing the primary lease free (expired, resigned, or its holder's process dead) to holding it, per takeover.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}})
	m.lateness = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tandem_schedule_lateness_seconds",
		Help:    "From an occurrence's scheduled time to its run being created, for occurrences fired on time (within their misfire grace; catch-up firings are not counted).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}})
	m.missed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_schedule_missed_total",
		Help: "Occurrences recorded as missed (not run) by this node's firings, by the job's misfire policy."}, []string{"policy"})
	runLabels := []string{"state"}
	if o.JobLabels {
		runLabels = append(runLabels, "job")
	}
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_runs_total",
		Help: "Attempts this node's worker ended, by how they ended (succeeded, failed, canceled, retrying)."}, runLabels)
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tandem_run_duration_seconds",
		Help:    "How long the attempts this node's worker ran took, from start to end.",
		Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}, runLabels[1:])
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_deliveries_total",
		Help: "Delivery attempts this node made, by channel and outcome (delivered, retrying, failed, disabled)."}, []string{"channel", "outcome"})
	m.syncLag = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_sync_lag_seconds",
		Help: "How long the oldest configuration change the disaster-recovery site has not acknowledged has waited, as this node's sync sender saw it (0: caught up, or not the sending primary)."})
	for _, c := range []prometheus.Collector{m.isPrimary, m.epoch, m.leaderChanges, m.takeover, m.lateness, m.missed, m.runs,
		m.duration, m.deliveries, m.syncLag} {
		f(c)
	}
	if o.Cluster != nil {
		f(&clusterCollector{m: m})
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// Takeover records how long this node's takeover of the lease took.
func (m *Metrics) Takeover(took time.Duration) {
	if m == nil {
		return
	}
	m.takeover.Observe(max(took, 0).Seconds())
}

// Elected records that this node became primary in epoch.
func (m *Metrics) Elected(epoch int64) {
	if m == nil {
		return
	}
	m.isPrimary.Set(1)
	m.epoch.Set(float64(epoch))
	m.leaderChanges.Inc()
}

// SyncLag records the site sync sender's lag.
func (m *Metrics) SyncLag(seconds float64) {
	if m == nil {
		return
	}
	m.syncLag.Set(seconds)
}

// Deposed records that this node is no longer primary.
func (m *Metrics) Deposed() {
	if m == nil {
		return
	}
	m.isPrimary.Set(0)
	m.epoch.Set(0)
}

// Fired records one schedule's committed firing: the occurrences fired on time (their
// lateness) and the occurrences recorded missed, under the job's misfire policy.
func (m *Metrics) Fired(policy string, late []time.Duration, missed int) {
	if m == nil {
		return
	}
	for _, d := range late {
		m.lateness.Observe(max(d, 0).Seconds())
	}
	if missed > 0 {
		m.missed.WithLabelValues(policy).Add(float64(missed))
	}
}

// RunEnded records one attempt this node's worker ended.
func (m *Metrics) RunEnded(job, state string, took time.Duration) {
	if m == nil {
		return
	}
	labels := []string{state}
	if m.o.JobLabels {
		labels = append(labels, job)
	}
	m.runs.WithLabelValues(labels...).Inc()
	m.duration.WithLabelValues(labels[1:]...).Observe(max(took, 0).Seconds())
}

// Delivered records one delivery attempt's outcome.
func (m *Metrics) Delivered(channel, outcome string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(channel, outcome).Inc()
}

// clusterCollector reads the cluster's state once per scrape.
type clusterCollector struct{ m *Metrics }

var (
	nodesDesc  = prometheus.NewDesc("tandem_nodes", "Nodes the repository lists, by mode.", []string{"mode"}, nil)
	queuedDesc = prometheus.NewDesc("tandem_runs_queued", "Runs waiting for a node.", nil, nil)
	oldestDesc = prometheus.NewDesc("tandem_queue_oldest_age_seconds",
		"Age of the oldest queued run (0 when none is queued).", nil, nil)
	underDesc = prometheus.NewDesc("tandem_outputs_underreplicated",
		"Output files short of their copies (being copied, or with no live holder left).", nil, nil)
	scrapeErrDesc = prometheus.NewDesc("tandem_cluster_scrape_error",
		"1 when the cluster's state could not be read from the repository for this scrape.", nil, nil)
)

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{nodesDesc, queuedDesc, oldestDesc, underDesc, scrapeErrDesc} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.m.o.ScrapeTimeout)
	defer cancel()
	st, err := c.m.o.Cluster(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, 0)
	seen := map[string]bool{}
	for _, mode := range modes {
		seen[mode] = true
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(st.Nodes[mode]), mode)
	}
	for mode, n := range st.Nodes {
		if !seen[mode] {
			ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(n), mode)
		}
	}
	ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(st.Queued))
	age := 0.0
	if !st.OldestQueued.IsZero() && st.Now.After(st.OldestQueued) {
		age = st.Now.Sub(st.OldestQueued).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(underDesc, prometheus.GaugeValue, float64(st.Underreplicated))
}
