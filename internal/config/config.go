// Package config owns tandem's server configuration: one typed struct, its defaults
// (exported XxxDefault constants, each field's comment says its default), and how it is
// assembled: defaults, then a TOML file, then TANDEM_* environment variables, then flags,
// each overriding the one before. Validate names the field and what is allowed.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/caarlos0/env/v11"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// Defaults.
const (
	DataDirDefault            = "tandem-data"
	ListenDefault             = "127.0.0.1:8200"
	CapacityDefault           = 4
	ShutdownGraceDefault      = 30 * time.Second
	OutputRetentionDefault    = 30 * 24 * time.Hour
	OutputLimitDefault        = 1 << 20
	OutputMaxBytesDefault     = 1 << 30
	OutputCopiesMax           = 10
	LeaseRenewDefault         = 250 * time.Millisecond
	LeaseTTLDefault           = 1500 * time.Millisecond
	LeaseMarginDefault        = 500 * time.Millisecond
	HeartbeatIntervalDefault  = time.Second
	HeartbeatMaxMissedDefault = 3
	FailbackHoldDefault       = 30 * time.Second
	LeaseProfileDefault       = "fast"
	LogLevelDefault           = "info"
	LogFormatDefault          = "text"
	SMTPTLSDefault            = "starttls"
	SMTPTimeoutDefault        = 30 * time.Second
	DeliverMaxAttemptsDefault = 8
	DeliverBackoffDefault     = 5 * time.Second
	DeliverBackoffMaxDefault  = 10 * time.Hour
	DeliverClaimDefault       = 2 * time.Minute
	DeliverHandoffDefault     = 5 * time.Second
	// WeightMax bounds a node's load-balancing weight.
	WeightMax = 1e6
	// SlotsMax bounds scheduler.slots.
	SlotsMax         = 64
	SlotCheckDefault = time.Second
)

// Config is a server's whole configuration.
type Config struct {
	// DataDir holds the SQLite repository and the outputs this node keeps. Default "tandem-data".
	DataDir string `toml:"data_dir" env:"DATA_DIR"`
	// DB is the repository: a SQLite path or sqlite://PATH (one host), or a
	// postgres://USER:PASSWORD@HOST:PORT/DATABASE URL (a cluster). Default DataDir/tandem.db.
	DB string `toml:"db" env:"DB"`
	// Listen is the API and console address. Default 127.0.0.1:8200.
	Listen string `toml:"listen" env:"LISTEN"`
	// Advertise is the address other nodes and clients use for this node. Default Listen.
	Advertise string `toml:"advertise" env:"ADVERTISE"`
	// NodeID names this node in the cluster. Default the host name.
	NodeID string `toml:"node_id" env:"NODE_ID"`
	// Priority orders standbys for takeover, 0 first. Default 0.
	Priority int `toml:"priority" env:"PRIORITY"`
	// Tags are matched against jobs' tags. Default none.
	Tags []string `toml:"tags" env:"TAGS" envSeparator:","`
	// Capacity is how many runs this node executes at once. Default 4.
	Capacity int `toml:"capacity" env:"CAPACITY"`
	// Weight is this node's load-balancing weight (weighted-min-load gives it runs in
	// proportion). 0 keeps the weight stored for the node (`tandem node weight`), else 1.
	Weight float64 `toml:"weight" env:"WEIGHT"`
	// ShutdownGrace is how long running runs may finish after SIGTERM. Default 30s.
	ShutdownGrace time.Duration `toml:"shutdown_grace" env:"SHUTDOWN_GRACE"`
	// OutputRetention is how long outputs are kept after their run ends. Default 720h.
	OutputRetention time.Duration `toml:"output_retention" env:"OUTPUT_RETENTION"`
	// OutputLimit is how many bytes of stdout and of stderr a run keeps. Default 1 MiB.
	OutputLimit int64 `toml:"output_limit" env:"OUTPUT_LIMIT"`
	// OutputCopies is how many verified copies, on as many nodes, each output file gets
	// when its job sets no copies: 1 to 10, never more than the live nodes. Default 0:
	// 2 when the cluster has more than one live node, else 1.
	OutputCopies int `toml:"output_copies" env:"OUTPUT_COPIES"`
	// OutputMaxBytes is how many bytes of output files one attempt may keep, all files
	// together; an attempt with more fails. Default 1 GiB.
	OutputMaxBytes int64 `toml:"output_max_bytes" env:"OUTPUT_MAX_BYTES"`

	// Worker makes this node a worker only: it never takes the primary role. Default false.
	Worker bool `toml:"worker" env:"WORKER"`
	// Failback lets this node take the primary role back from a node of worse priority
	// once it has been up for FailbackHold. Default false.
	Failback bool `toml:"failback" env:"FAILBACK"`
	// FailbackHold is the hold-down time before a failback. Default 30s.
	FailbackHold time.Duration `toml:"failback_hold" env:"FAILBACK_HOLD"`

	// ClockSkew shifts this node's reading of its host's wall clock: a fault for tests
	// (tandem corrects every node to the repository's clock, so it must not matter).
	// Default 0.
	ClockSkew time.Duration `toml:"clock_skew" env:"CLOCK_SKEW"`

	// InsecureNoAuth switches authentication off: every request may do everything. Only
	// allowed when Listen is a loopback address. Default false.
	InsecureNoAuth bool `toml:"insecure_no_auth" env:"INSECURE_NO_AUTH"`
	// ClusterSecretFile holds the secret every node of the cluster signs its calls to
	// the others with (at least 16 bytes; trailing newline ignored). Default "": the
	// first node generates one and keeps it in the repository.
	ClusterSecretFile string `toml:"cluster_secret_file" env:"CLUSTER_SECRET_FILE"`
	// ClusterSecret, from the environment only (TANDEM_CLUSTER_SECRET), overrides
	// ClusterSecretFile.
	ClusterSecret string `toml:"-" env:"CLUSTER_SECRET"`

	// SecretKeyFile holds the key secrets are encrypted with (64 hex digits), the same on
	// every node. Default "": DATA_DIR/secret.key, generated by a repository's first node.
	SecretKeyFile string `toml:"secret_key_file" env:"SECRET_KEY_FILE"`
	// TLSCert and TLSKey are PEM files: with them the API and console are served over
	// HTTPS (Go's default versions and suites), reloaded when the files change and on
	// SIGHUP. Default: plain HTTP.
	TLSCert string `toml:"tls_cert" env:"TLS_CERT"`
	TLSKey  string `toml:"tls_key" env:"TLS_KEY"`
	// RedirectHTTP, with TLSCert, is a host:port where plain HTTP requests are answered
	// with a permanent redirect to the same path over HTTPS (on Listen's port). Default
	// "": none.
	RedirectHTTP string `toml:"redirect_http" env:"REDIRECT_HTTP"`
	// TLSCA is a PEM bundle this node trusts when it calls other nodes over HTTPS.
	// Default: the system's roots.
	TLSCA string `toml:"tls_ca" env:"TLS_CA"`
	// RunAs is the Unix user command jobs run as (the server must run as root to switch
	// users). Default "": the server's own user.
	RunAs string `toml:"run_as" env:"RUN_AS"`
	// RunAsAllowed are the users a job may name in its command.run_as. Default none.
	RunAsAllowed []string `toml:"run_as_allowed" env:"RUN_AS_ALLOWED" envSeparator:","`

	// CommandGuard is the executable command jobs run under so they die with this node's
	// process (worker.Launcher): the tandem binary sets it to itself. Not configurable.
	CommandGuard string `toml:"-"`
	// SecretSeen, if set, is told each secret value this node decrypts, so that the
	// server's log can hide it wherever it appears: the tandem binary sets it to its
	// log's redactor. Not configurable.
	SecretSeen func(value string) `toml:"-"`

	Dispatch  Dispatch  `toml:"dispatch" envPrefix:"DISPATCH_"`
	Scheduler Scheduler `toml:"scheduler" envPrefix:"SCHEDULER_"`

	Lease     Lease     `toml:"lease" envPrefix:"LEASE_"`
	Heartbeat Heartbeat `toml:"heartbeat" envPrefix:"HEARTBEAT_"`
	Log       Log       `toml:"log" envPrefix:"LOG_"`
	SMTP      SMTP      `toml:"smtp" envPrefix:"SMTP_"`
	Deliver   Deliver   `toml:"deliver" envPrefix:"DELIVER_"`
	Metrics   Metrics   `toml:"metrics" envPrefix:"METRICS_"`
	SiteSync  SiteSync  `toml:"sitesync" envPrefix:"SITESYNC_"`
	Console   Console   `toml:"console" envPrefix:"CONSOLE_"`
	// Version is this build's version, for tandem_build_info (set by the command).
	Version string `toml:"-"`
}

// SMTP is the mail server email deliveries go through.
type SMTP struct {
	// Host of the mail server; "" means this node sends no mail (an email delivery it
	// claims fails saying so). Default "".
	Host string `toml:"host" env:"HOST"`
	// Port. Default 587 for starttls, 465 for tls, 25 for none.
	Port int `toml:"port" env:"PORT"`
	// From is the sender's address, required with Host.
	From string `toml:"from" env:"FROM"`
	// Username to authenticate as ("" : no authentication); the mechanism is the
	// strongest both sides offer. Default "".
	Username string `toml:"username" env:"USERNAME"`
	// PasswordFile holds the password (trailing newline ignored). Default "".
	PasswordFile string `toml:"password_file" env:"PASSWORD_FILE"`
	// Password, from the environment only (TANDEM_SMTP_PASSWORD): never in a file
	// that may be shared. Overrides PasswordFile.
	Password string `toml:"-" env:"PASSWORD"`
	// TLS: starttls (the default; the server must offer it), tls (implicit, port 465)
	// or none.
	TLS string `toml:"tls" env:"TLS"`
	// Timeout bounds connecting and each exchange. Default 30s.
	Timeout time.Duration `toml:"timeout" env:"TIMEOUT"`
}

// Metrics configures GET /metrics.
type Metrics struct {
	// JobLabels adds a job label to the per-run metrics (one series per job). Default false.
	JobLabels bool `toml:"job_labels" env:"JOB_LABELS"`
}

// Console configures the web console this node serves at /.
type Console struct {
	// ReadOnly makes this node's console show everything and change nothing: every
	// console action is refused (the API is not affected). Default false.
	ReadOnly bool `toml:"read_only" env:"READ_ONLY"`
}

// Deliver configures this node's deliverer.
type Deliver struct {
	// MaxAttempts per delivery before it ends failed. Default 8.
	MaxAttempts int `toml:"max_attempts" env:"MAX_ATTEMPTS"`
	// Backoff after the first failed attempt, times 6 after each next one. Default 5s.
	Backoff time.Duration `toml:"backoff" env:"BACKOFF"`
	// BackoffMax caps the delay (and a receiver's Retry-After). Default 10h.
	BackoffMax time.Duration `toml:"backoff_max" env:"BACKOFF_MAX"`
	// Claim is how long a node's claim on a delivery holds; its send is cut off
	// before. Default 2m.
	Claim time.Duration `toml:"claim" env:"CLAIM"`
	// Handoff is how long a delivery waits for the node that ran the run before any
	// node takes it. Default 5s.
	Handoff time.Duration `toml:"handoff" env:"HANDOFF"`
	// BaseURL starts the links in deliveries. Default "http://" + advertise.
	BaseURL string `toml:"base_url" env:"BASE_URL"`
}

// Lease configures the primary lease.
type Lease struct {
	// Profile picks renew, TTL and margin together: fast (the default: 250ms, 1.5s,
	// 0.5s, for one site), normal (1s, 5s, 1.5s) or wan (3s, 15s, 4s, for slow links).
	// Renew, TTL and Margin set explicitly override the profile's values.
	Profile string `toml:"profile" env:"PROFILE"`
	// Renew is how often the primary renews its lease. Default 250ms.
	Renew time.Duration `toml:"renew" env:"RENEW"`
	// TTL is how long a lease lasts without renewal. Default 1.5s.
	TTL time.Duration `toml:"ttl" env:"TTL"`
	// Margin is how long before TTL the holder stops trusting its role. Default 0.5s.
	Margin time.Duration `toml:"margin" env:"MARGIN"`
}

// Dispatch configures load balancing.
type Dispatch struct {
	// Algorithm is the cluster's load-balancing algorithm: round-robin, min-load,
	// weighted-min-load or random. Stored in the repository when set, so every primary
	// uses the same; "" keeps the stored one (round-robin when none is).
	Algorithm string `toml:"algorithm" env:"ALGORITHM"`
}

// Scheduler configures who fires schedules.
type Scheduler struct {
	// Slots is how many scheduler slots share the firing: 1, the primary fires every
	// schedule; N > 1, N slot leases, each fencing the firing of the schedules whose id
	// mod N is its number, held by any eligible node. Stored in the repository: every
	// node must agree. 0 (unset): the stored number, else 1. At most SlotsMax.
	Slots int `toml:"slots" env:"SLOTS"`
	// SlotCheck is how often a node checks that the slots are spread over the eligible
	// nodes (a node holding more than its share hands one over). Default 1s.
	SlotCheck time.Duration `toml:"slot_check" env:"SLOT_CHECK"`
	// Reset lets this node's Slots replace the stored number (every other node stopped):
	// the --reset-slots flag, for one start.
	Reset bool `toml:"-"`
}

// Heartbeat configures membership.
type Heartbeat struct {
	// Interval between heartbeats. Default 1s.
	Interval time.Duration `toml:"interval" env:"INTERVAL"`
	// MaxMissed heartbeats before a node is declared lost. Default 3.
	MaxMissed int `toml:"max_missed" env:"MAX_MISSED"`
}

// Log configures logging.
type Log struct {
	// Level: debug, info, warn or error. Default info.
	Level string `toml:"level" env:"LEVEL"`
	// Format: text or json. Default text.
	Format string `toml:"format" env:"FORMAT"`
}

// Default returns the configuration used when nothing is configured.
func Default() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "tandem"
	}
	return Config{
		DataDir: DataDirDefault, Listen: ListenDefault, NodeID: host, Capacity: CapacityDefault, OutputMaxBytes: OutputMaxBytesDefault,
		ShutdownGrace: ShutdownGraceDefault, OutputRetention: OutputRetentionDefault, OutputLimit: OutputLimitDefault,
		FailbackHold: FailbackHoldDefault,
		Lease:        Lease{Profile: LeaseProfileDefault},
		Heartbeat:    Heartbeat{Interval: HeartbeatIntervalDefault, MaxMissed: HeartbeatMaxMissedDefault},
		Log:          Log{Level: LogLevelDefault, Format: LogFormatDefault},
		SMTP:         SMTP{TLS: SMTPTLSDefault, Timeout: SMTPTimeoutDefault},
		Deliver: Deliver{MaxAttempts: DeliverMaxAttemptsDefault, Backoff: DeliverBackoffDefault, BackoffMax: DeliverBackoffMaxDefault,
			Claim: DeliverClaimDefault, Handoff: DeliverHandoffDefault},
		SiteSync: siteSyncDefault(),
	}
}

// Load builds the configuration from the defaults, the TOML file at path (if path is not
// empty) and the TANDEM_* environment. Flags are applied by the caller, then Finish.
func Load(path string, environ map[string]string) (Config, error) {
	c := Default()
	if path != "" {
		md, err := toml.DecodeFile(path, &c)
		if err != nil {
			return c, fmt.Errorf("read config %s: %w", path, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return c, &Error{Field: und[0].String(), Problem: fmt.Sprintf("unknown setting in %s", path)}
		}
	}
	if err := env.ParseWithOptions(&c, env.Options{Prefix: "TANDEM_", Environment: environ}); err != nil {
		return c, fmt.Errorf("read TANDEM_* environment: %w", err)
	}
	return c, nil
}

// LeaseProfiles are the named lease timings: renew, TTL, margin.
var LeaseProfiles = map[string][3]time.Duration{
	"fast":   {LeaseRenewDefault, LeaseTTLDefault, LeaseMarginDefault},
	"normal": {time.Second, 5 * time.Second, 1500 * time.Millisecond},
	"wan":    {3 * time.Second, 15 * time.Second, 4 * time.Second},
}

// Finish fills the settings derived from others, then validates.
func (c *Config) Finish() error {
	if p, ok := LeaseProfiles[c.Lease.Profile]; ok {
		c.Lease.Renew = cmp.Or(c.Lease.Renew, p[0])
		c.Lease.TTL = cmp.Or(c.Lease.TTL, p[1])
		c.Lease.Margin = cmp.Or(c.Lease.Margin, p[2])
	}
	c.Scheduler.SlotCheck = cmp.Or(c.Scheduler.SlotCheck, SlotCheckDefault)
	if c.DataDir != "" {
		// Absolute: runs get paths inside it ($TANDEM_OUTPUT_DIR) and execute in other
		// working directories, where a relative path would point elsewhere.
		abs, err := filepath.Abs(c.DataDir)
		if err != nil {
			return fmt.Errorf("data_dir: %q: %w", c.DataDir, err)
		}
		c.DataDir = abs
	}
	if c.DB == "" {
		c.DB = filepath.Join(c.DataDir, "tandem.db")
	}
	if c.Advertise == "" {
		c.Advertise = c.Listen
	}
	if c.SMTP.Password == "" && c.SMTP.PasswordFile != "" {
		b, err := os.ReadFile(c.SMTP.PasswordFile)
		if err != nil {
			return &Error{Field: "smtp.password_file", Problem: fmt.Sprintf("cannot read it: %v", err)}
		}
		c.SMTP.Password = strings.TrimRight(string(b), "\r\n")
	}
	if c.ClusterSecret == "" && c.ClusterSecretFile != "" {
		b, err := os.ReadFile(c.ClusterSecretFile)
		if err != nil {
			return &Error{Field: "cluster_secret_file", Problem: fmt.Sprintf("cannot read it: %v", err)}
		}
		c.ClusterSecret = strings.TrimRight(string(b), "\r\n")
	}
	if err := c.finishSiteSync(); err != nil {
		return err
	}
	return c.Validate()
}

// ClusterSecretMin is the shortest cluster secret accepted.
const ClusterSecretMin = 16

// Loopback reports whether the host of a host:port address is a loopback address.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsPostgres reports whether the repository is a PostgreSQL database.
func (c *Config) IsPostgres() bool {
	return store.IsPostgresURL(c.DB)
}

// RedactedDB is DB without a password, for logs and messages.
func (c *Config) RedactedDB() string {
	u, err := url.Parse(c.DB)
	if err != nil || u.User == nil {
		return c.DB
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Error names a setting and what is wrong with it.
type Error struct {
	Field   string
	Problem string
}

func (e *Error) Error() string { return fmt.Sprintf("config %s: %s", e.Field, e.Problem) }

// Validate checks every setting.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &Error{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if c.IsPostgres() {
		if u, err := url.Parse(c.DB); err != nil || u.Host == "" {
			bad("db", "%q is not a postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE URL", c.RedactedDB())
		}
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port (e.g. 127.0.0.1:8200)", c.Listen)
	}
	if c.InsecureNoAuth && !Loopback(c.Listen) {
		bad("insecure_no_auth", "refused: listen %q is not a loopback address (127.0.0.1, ::1, localhost); without authentication anyone who reaches the port could run commands as this server's user", c.Listen)
	}
	if c.ClusterSecret != "" && len(c.ClusterSecret) < ClusterSecretMin {
		bad("cluster_secret_file", "the cluster secret must be at least %d bytes, got %d", ClusterSecretMin, len(c.ClusterSecret))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert", "tls_cert and tls_key go together: give both or neither")
	}
	if c.RedirectHTTP != "" {
		if _, _, err := net.SplitHostPort(c.RedirectHTTP); err != nil {
			bad("redirect_http", "%q is not host:port (e.g. :8080)", c.RedirectHTTP)
		} else if c.TLSCert == "" {
			bad("redirect_http", "redirects to HTTPS, which needs tls_cert and tls_key")
		} else if c.InsecureNoAuth && !Loopback(c.RedirectHTTP) {
			bad("insecure_no_auth", "refused: redirect_http %q is not a loopback address; with authentication off every listen address must be", c.RedirectHTTP)
		}
	}
	if c.NodeID == "" || strings.ContainsAny(c.NodeID, " \t,") {
		bad("node_id", "%q is not a node name: non-empty, no spaces or commas", c.NodeID)
	}
	if c.Priority < 0 || c.Priority > 1000 {
		bad("priority", "must be between 0 (first) and 1000, got %d", c.Priority)
	}
	if c.Capacity < 0 || c.Capacity > 10000 {
		bad("capacity", "must be between 0 (runs nothing) and 10000, got %d", c.Capacity)
	}
	if c.Scheduler.Slots < 0 || c.Scheduler.Slots > SlotsMax {
		bad("scheduler.slots", "must be between 1 and %d (0 or unset: the number stored in the repository, else 1), got %d", SlotsMax, c.Scheduler.Slots)
	}
	if c.Scheduler.SlotCheck < 0 {
		bad("scheduler.slot_check", "must not be negative, got %s", c.Scheduler.SlotCheck)
	}
	if c.Weight < 0 || c.Weight > WeightMax || math.IsNaN(c.Weight) {
		bad("weight", "must be a number above 0 and at most %g (0 or unset: keep the stored weight, else 1), got %g", float64(WeightMax), c.Weight)
	}
	if a := c.Dispatch.Algorithm; a != "" && !slices.Contains(job.BalanceAlgorithms, a) {
		bad("dispatch.algorithm", "%q is not a load-balancing algorithm (allowed: %s)", a, strings.Join(job.BalanceAlgorithms, ", "))
	}
	if c.ShutdownGrace < 0 {
		bad("shutdown_grace", "must not be negative, got %s", c.ShutdownGrace)
	}
	if c.OutputRetention < time.Minute {
		bad("output_retention", "must be at least 1m, got %s", c.OutputRetention)
	}
	if c.OutputLimit < 1024 || c.OutputLimit > 1<<30 {
		bad("output_limit", "must be between 1024 and 1073741824 bytes, got %d", c.OutputLimit)
	}
	if c.OutputCopies < 0 || c.OutputCopies > OutputCopiesMax {
		bad("output_copies", "must be between 1 and %d (or 0: 2 on a cluster, 1 on one node), got %d", OutputCopiesMax, c.OutputCopies)
	}
	if c.OutputMaxBytes < 1 {
		bad("output_max_bytes", "must be at least 1 byte, got %d", c.OutputMaxBytes)
	}
	if _, ok := LeaseProfiles[c.Lease.Profile]; !ok {
		bad("lease.profile", "%q is not a profile (fast, normal, wan)", c.Lease.Profile)
	}
	if c.ClockSkew.Abs() > 24*time.Hour {
		bad("clock_skew", "must be within ±24h, got %s", c.ClockSkew)
	}
	if c.FailbackHold < 0 {
		bad("failback_hold", "must not be negative, got %s", c.FailbackHold)
	}
	if c.Lease.Renew <= 0 || c.Lease.TTL < 2*c.Lease.Renew {
		bad("lease.ttl", "must be at least twice lease.renew (%s), got %s", c.Lease.Renew, c.Lease.TTL)
	}
	if c.Lease.Margin <= 0 || c.Lease.Margin >= c.Lease.TTL-c.Lease.Renew {
		bad("lease.margin", "must be positive and less than lease.ttl - lease.renew (%s), got %s", c.Lease.TTL-c.Lease.Renew, c.Lease.Margin)
	}
	if c.Heartbeat.Interval <= 0 {
		bad("heartbeat.interval", "must be positive, got %s", c.Heartbeat.Interval)
	}
	if c.Heartbeat.MaxMissed < 1 {
		bad("heartbeat.max_missed", "must be at least 1, got %d", c.Heartbeat.MaxMissed)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not a level (debug, info, warn, error)", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q is not a format (text, json)", c.Log.Format)
	}
	c.validateDelivery(bad)
	c.validateSiteSync(bad)
	return errors.Join(errs...)
}

// validateDelivery checks [smtp] and [deliver].
func (c *Config) validateDelivery(bad func(field, format string, args ...any)) {
	s := c.SMTP
	switch s.TLS {
	case "starttls", "tls", "none":
	default:
		bad("smtp.tls", "%q is not allowed (starttls, tls, none)", s.TLS)
	}
	if s.Port < 0 || s.Port > 65535 {
		bad("smtp.port", "must be between 1 and 65535 (0: the default for smtp.tls), got %d", s.Port)
	}
	if s.Host != "" {
		if a, err := mail.ParseAddress(s.From); err != nil || !strings.Contains(a.Address, "@") {
			bad("smtp.from", "%q is not an email address (it is required with smtp.host)", s.From)
		}
	}
	if s.Timeout <= 0 {
		bad("smtp.timeout", "must be positive, got %s", s.Timeout)
	}
	d := c.Deliver
	if d.MaxAttempts < 1 || d.MaxAttempts > 100 {
		bad("deliver.max_attempts", "must be between 1 and 100, got %d", d.MaxAttempts)
	}
	if d.Backoff <= 0 || d.BackoffMax < d.Backoff {
		bad("deliver.backoff", "must be positive and at most deliver.backoff_max (%s), got %s", d.BackoffMax, d.Backoff)
	}
	if d.Claim < time.Second {
		bad("deliver.claim", "must be at least 1s, got %s", d.Claim)
	}
	if d.Handoff < 0 {
		bad("deliver.handoff", "must not be negative, got %s", d.Handoff)
	}
	if d.BaseURL != "" {
		if u, err := url.Parse(d.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("deliver.base_url", "%q is not an http:// or https:// URL", d.BaseURL)
		}
	}
}
