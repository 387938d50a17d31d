package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/logquiet"
	"github.com/tandemhq/tandem/internal/node"
	"github.com/tandemhq/tandem/internal/store"
	_ "github.com/tandemhq/tandem/internal/store/engines" // store.Open
)

func newServerCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a tandem node (SQLite in ./tandem-data, listening on 127.0.0.1:8200 unless configured)",
		Args:  cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "TOML configuration file")
	f.String("data-dir", config.DataDirDefault, "data directory (SQLite repository, outputs)")
	f.String("db", "", "repository: a SQLite path or sqlite://PATH (default DATA_DIR/tandem.db), or postgres://USER:PASS@HOST:PORT/DB")
	f.String("listen", config.ListenDefault, "API and console address")
	f.String("advertise", "", "address other nodes and clients use for this node (default --listen)")
	f.String("node-id", "", "node name (default the host name)")
	f.Int("priority", 0, "takeover priority among standbys, 0 first")
	f.StringSlice("tags", nil, "node tags, comma separated")
	f.Int("capacity", config.CapacityDefault, "runs executed at once")
	f.Int("scheduler-slots", 0, "scheduler slots sharing the firing (1: the primary fires everything); stored, every node must agree (default: the stored number, else 1)")
	f.Bool("reset-slots", false, "with --scheduler-slots, replace the stored number of slots (every other node must be stopped)")
	f.Float64("weight", 0, "load-balancing weight, above 0 (default: the weight stored for this node, else 1)")
	f.String("dispatch-algorithm", "", "the cluster's load-balancing algorithm: round-robin, min-load, weighted-min-load or random (stored; default: the stored one, else round-robin)")
	f.Duration("shutdown-grace", config.ShutdownGraceDefault, "how long running runs may finish after SIGTERM")
	f.Bool("worker", false, "worker only: never take the primary role")
	f.Bool("failback", false, "take the primary role back from a node of worse priority after --failback-hold")
	f.Duration("failback-hold", config.FailbackHoldDefault, "hold-down time before a failback")
	f.String("lease-profile", config.LeaseProfileDefault, "lease timings: fast (250ms/1.5s), normal (1s/5s) or wan (3s/15s)")
	f.Duration("clock-skew", 0, "testing: shift this node's wall clock (tandem corrects it to the repository's clock)")
	f.Bool("insecure-no-auth", false, "switch authentication off (every request may do everything); refused unless --listen is a loopback address")
	f.String("tls-cert", "", "PEM certificate: serve the API over HTTPS (with --tls-key; reloaded on SIGHUP)")
	f.String("tls-key", "", "PEM private key of --tls-cert")
	f.String("tls-ca", "", "PEM bundle trusted when calling other nodes over HTTPS (default: the system's roots)")
	f.String("log-level", config.LogLevelDefault, "debug, info, warn or error")
	f.String("log-format", config.LogFormatDefault, "text or json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := config.Load(file, environ())
		if err != nil {
			return err
		}
		applyFlags(cmd, &cfg)
		if err := cfg.Finish(); err != nil {
			return err
		}
		return runServer(cmd.Context(), cfg)
	}
	return cmd
}

// environ returns the process environment as a map.
func environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// applyFlags overrides the configuration with the flags given on the command line.
func applyFlags(cmd *cobra.Command, c *config.Config) {
	f := cmd.Flags()
	str := func(name string, dst *string) {
		if f.Changed(name) {
			*dst, _ = f.GetString(name)
		}
	}
	str("data-dir", &c.DataDir)
	str("db", &c.DB)
	str("listen", &c.Listen)
	str("advertise", &c.Advertise)
	str("node-id", &c.NodeID)
	str("log-level", &c.Log.Level)
	str("lease-profile", &c.Lease.Profile)
	if f.Changed("worker") {
		c.Worker, _ = f.GetBool("worker")
	}
	if f.Changed("insecure-no-auth") {
		c.InsecureNoAuth, _ = f.GetBool("insecure-no-auth")
	}
	if f.Changed("failback") {
		c.Failback, _ = f.GetBool("failback")
	}
	if f.Changed("failback-hold") {
		c.FailbackHold, _ = f.GetDuration("failback-hold")
	}
	if f.Changed("clock-skew") {
		c.ClockSkew, _ = f.GetDuration("clock-skew")
	}
	str("log-format", &c.Log.Format)
	str("tls-cert", &c.TLSCert)
	str("tls-key", &c.TLSKey)
	str("tls-ca", &c.TLSCA)
	if f.Changed("priority") {
		c.Priority, _ = f.GetInt("priority")
	}
	if f.Changed("capacity") {
		c.Capacity, _ = f.GetInt("capacity")
	}
	if f.Changed("scheduler-slots") {
		c.Scheduler.Slots, _ = f.GetInt("scheduler-slots")
	}
	if f.Changed("reset-slots") {
		c.Scheduler.Reset, _ = f.GetBool("reset-slots")
	}
	if f.Changed("weight") {
		c.Weight, _ = f.GetFloat64("weight")
	}
	str("dispatch-algorithm", &c.Dispatch.Algorithm)
	if f.Changed("tags") {
		c.Tags, _ = f.GetStringSlice("tags")
	}
	if f.Changed("shutdown-grace") {
		c.ShutdownGrace, _ = f.GetDuration("shutdown-grace")
	}
}

func newLogger(c config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if c.Log.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	// A warning repeated within 5s is written once (a database outage fails every loop
	// on every pass); the next one says how many were left out.
	return slog.New(logquiet.New(h, 5*time.Second))
}

// GuardExeEnv, for tests, names another tandem binary to run commands' guards: a server
// built with the race detector would otherwise start a race-instrumented process for
// every command, which costs hundreds of milliseconds on a busy machine.
const GuardExeEnv = "TANDEM_TEST_GUARD_EXE"

// runServer runs a node until SIGINT or SIGTERM, then shuts it down gracefully.
func runServer(ctx context.Context, cfg config.Config) error {
	log := newLogger(cfg)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	st, err := store.Open(ctx, cfg.DB, log.With("component", store.Engine(cfg.DB)))
	if err != nil {
		return err
	}
	defer st.Close()
	if exe, err := os.Executable(); err == nil {
		cfg.CommandGuard = exe // commands run under this binary's guard (worker.GuardMain)
	}
	if g := os.Getenv(GuardExeEnv); g != "" {
		cfg.CommandGuard = g
	}
	cfg.Version = Version
	n := node.New(cfg, st, log)
	if err := n.Start(ctx); err != nil {
		return err
	}
	if p := n.BootstrapTokenPath(); p != "" {
		fmt.Fprintf(os.Stderr, "tandem: first start on this repository: an admin token was written to %s (readable by this user only); tandem commands run on this host find it (see tandem login, tandem token)\n", p)
	}
	fmt.Fprintf(os.Stderr, "tandem %s: node %s serving on %s://%s (repository %s)\n", Version, cfg.NodeID, n.Scheme(), n.Addr(), cfg.RedactedDB())
	hup, hupDone := make(chan os.Signal, 1), make(chan struct{})
	signal.Notify(hup, syscall.SIGHUP)
	defer func() { signal.Stop(hup); close(hupDone) }()
	go func() {
		for {
			select {
			case <-hup:
				_ = n.ReloadTLS() // logged; the previous certificate stays
			case <-hupDone:
				return
			}
		}
	}()
	select {
	case <-ctx.Done():
		log.Info("signal received: shutting down")
	case <-n.StopRequested():
	}
	// The shutdown itself gets the grace period plus time to record what was canceled.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownGrace+30*time.Second)
	defer cancel()
	if err := n.Stop(sctx); err != nil {
		return err
	}
	if n.RestartRequested() {
		st.Close()
		return restart(log)
	}
	return nil
}

// restart replaces this process with a fresh one of the same program and arguments.
func restart(log *slog.Logger) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	log.Info("restarting", "exe", exe)
	return syscall.Exec(exe, os.Args, os.Environ())
}
