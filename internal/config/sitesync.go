package config

import (
	"net/url"
	"os"
	"strings"
	"time"
)

// Site sync defaults.
const (
	SiteSyncModeAutomatic        = "automatic"
	SiteSyncModeOnDemand         = "on-demand"
	SiteSyncTimeoutDefault       = 10 * time.Second
	SiteSyncMaxFailuresDefault   = 5
	SiteSyncBatchDefault         = 500
	SiteSyncRetryDefault         = 2 * time.Second
	ChangeRetentionDefault       = 30 * 24 * time.Hour
	ChangeKeepDefault            = 10000
	SiteSyncBatchMax             = 10000
	SiteSyncMaxFailuresMax       = 1000
	SiteSyncSubstitutionsMax     = 100
	siteSyncRetentionMinimum     = time.Hour
	siteSyncTimeoutMinimum       = 100 * time.Millisecond
	siteSyncRetryMinimum         = 10 * time.Millisecond
	siteSyncTokenFromEnvironment = "TANDEM_SITESYNC_TOKEN"
)

// SiteSync configures this cluster as the source of a disaster-recovery site's
// configuration ([sitesync]), and the retention of the change log it streams.
type SiteSync struct {
	// Target is the DR site's server list ("https://dr-a:8200"; the next is tried when
	// one does not answer). Default none: this cluster syncs to no site.
	Target []string `toml:"target" env:"TARGET" envSeparator:","`
	// TokenFile holds an API token with the sync role on the target (trailing newline
	// ignored). Required with Target unless TANDEM_SITESYNC_TOKEN is set.
	TokenFile string `toml:"token_file" env:"TOKEN_FILE"`
	// Token, from the environment only (TANDEM_SITESYNC_TOKEN), overrides TokenFile.
	Token string `toml:"-" env:"TOKEN"`
	// CA is a PEM file of the certificates trusted for an https:// target. Default: the
	// system's roots.
	CA string `toml:"ca" env:"CA"`
	// CAPEM is CA's contents, read by Finish.
	CAPEM []byte `toml:"-" env:"-"`
	// Timeout bounds one call to the target (connect and answer). Default 10s.
	Timeout time.Duration `toml:"timeout" env:"TIMEOUT"`
	// Mode: automatic (the default: every change is streamed as it is made) or
	// on-demand (only tandem sync full).
	Mode string `toml:"mode" env:"MODE"`
	// StartAfterSync leaves synced jobs running on the target; by default they are
	// paused there, so the DR site does not run them twice. Default false.
	StartAfterSync bool `toml:"start_after_sync" env:"START_AFTER_SYNC"`
	// Substitute rewrites addresses in what is synced (at most 100). Default none.
	Substitute []Substitution `toml:"substitute" env:"-"`
	// SyncUsers sends users (their password hashes) and API tokens (their hashes) too;
	// a target keeps its own users and tokens besides. Default false.
	SyncUsers bool `toml:"sync_users" env:"SYNC_USERS"`
	// SyncSecrets sends secrets too: each opened with this cluster's secret key and
	// sealed for the target's (it needs the key on the sending primary, and the
	// target's on the node that receives). Default false: the DR site's secrets are
	// its own.
	SyncSecrets bool `toml:"sync_secrets" env:"SYNC_SECRETS"`
	// MaxFailures consecutive failed batches pause automatic sync (sync.paused) until
	// tandem sync resume. Default 5.
	MaxFailures int `toml:"max_failures" env:"MAX_FAILURES"`
	// Batch is the most changes one call carries. Default 500.
	Batch int `toml:"batch" env:"BATCH"`
	// Retry is the wait after the first failed batch, doubling after each next one up to
	// a minute. Default 2s.
	Retry time.Duration `toml:"retry" env:"RETRY"`
	// Name is how this cluster names itself to the target. Default: the primary's
	// node id and advertised address.
	Name string `toml:"name" env:"NAME"`
	// ChangeRetention is how long the change log keeps a change (a target whose cursor
	// is older needs a full sync). Default 720h.
	ChangeRetention time.Duration `toml:"change_retention" env:"CHANGE_RETENTION"`
	// ChangeKeep is how many of the newest changes are kept whatever their age.
	// Default 10000.
	ChangeKeep int `toml:"change_keep" env:"CHANGE_KEEP"`
}

// Substitution is one address rewritten on the way to the target.
type Substitution struct {
	From string `toml:"from"`
	To   string `toml:"to"`
}

// Enabled reports whether this cluster syncs to a DR site.
func (s *SiteSync) Enabled() bool { return len(s.Target) > 0 }

func siteSyncDefault() SiteSync {
	return SiteSync{Timeout: SiteSyncTimeoutDefault, Mode: SiteSyncModeAutomatic, MaxFailures: SiteSyncMaxFailuresDefault,
		Batch: SiteSyncBatchDefault, Retry: SiteSyncRetryDefault, ChangeRetention: ChangeRetentionDefault, ChangeKeep: ChangeKeepDefault}
}

// finishSiteSync reads the files [sitesync] names.
func (c *Config) finishSiteSync() error {
	s := &c.SiteSync
	if s.Token == "" && s.TokenFile != "" {
		b, err := os.ReadFile(s.TokenFile)
		if err != nil {
			return &Error{Field: "sitesync.token_file", Problem: "cannot read it: " + err.Error()}
		}
		s.Token = strings.TrimRight(string(b), "\r\n")
	}
	if s.CA != "" {
		b, err := os.ReadFile(s.CA)
		if err != nil {
			return &Error{Field: "sitesync.ca", Problem: "cannot read it: " + err.Error()}
		}
		s.CAPEM = b
	}
	return nil
}

func (c *Config) validateSiteSync(bad func(field, format string, args ...any)) {
	s := c.SiteSync
	for _, t := range s.Target {
		u, err := url.Parse(t)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("sitesync.target", "%q is not an http:// or https:// server URL (e.g. https://dr-a:8200)", t)
		}
	}
	if s.Enabled() && s.Token == "" {
		bad("sitesync.token_file", "a token with the sync role on the target is required with sitesync.target (token_file, or %s)", siteSyncTokenFromEnvironment)
	}
	if s.Mode != SiteSyncModeAutomatic && s.Mode != SiteSyncModeOnDemand {
		bad("sitesync.mode", "%q is not a mode (automatic, on-demand)", s.Mode)
	}
	if s.Timeout < siteSyncTimeoutMinimum {
		bad("sitesync.timeout", "must be at least %s, got %s", siteSyncTimeoutMinimum, s.Timeout)
	}
	if s.MaxFailures < 1 || s.MaxFailures > SiteSyncMaxFailuresMax {
		bad("sitesync.max_failures", "must be between 1 and %d, got %d", SiteSyncMaxFailuresMax, s.MaxFailures)
	}
	if s.Batch < 1 || s.Batch > SiteSyncBatchMax {
		bad("sitesync.batch", "must be between 1 and %d, got %d", SiteSyncBatchMax, s.Batch)
	}
	if s.Retry < siteSyncRetryMinimum {
		bad("sitesync.retry", "must be at least %s, got %s", siteSyncRetryMinimum, s.Retry)
	}
	if len(s.Substitute) > SiteSyncSubstitutionsMax {
		bad("sitesync.substitute", "at most %d substitutions, got %d", SiteSyncSubstitutionsMax, len(s.Substitute))
	}
	for i, sub := range s.Substitute {
		if strings.TrimSpace(sub.From) == "" || sub.From == sub.To {
			bad("sitesync.substitute", "entry %d: from must be a non-empty address that differs from to (got from %q, to %q)", i+1, sub.From, sub.To)
		}
	}
	if s.ChangeRetention < siteSyncRetentionMinimum {
		bad("sitesync.change_retention", "must be at least %s, got %s", siteSyncRetentionMinimum, s.ChangeRetention)
	}
	if s.ChangeKeep < 0 {
		bad("sitesync.change_keep", "must not be negative, got %d", s.ChangeKeep)
	}
}
