// Package job owns the job definition: what an operator writes in a job file, how it is
// parsed (TOML or JSON, strictly), and the rules a definition must satisfy before anything
// is stored. A Spec that passed Validate is safe for every other package to use as is.
package job

import "time"

// Overlap policies: what happens when a run of a job is due while another is active.
const (
	OverlapAllow   = "allow"   // start it anyway
	OverlapForbid  = "forbid"  // record it as skipped
	OverlapQueue   = "queue"   // hold it until the active one ends
	OverlapReplace = "replace" // cancel the active one, then start it
)

// Misfire policies: what happens to occurrences missed while no scheduler was alive.
const (
	MisfireSkip    = "skip"     // record them as missed, fire nothing
	MisfireRunOnce = "run-once" // fire the latest of them once, record the rest as missed
	MisfireRunAll  = "run-all"  // fire each one still within misfire_window
)

// Defaults of a job file's optional fields.
const (
	TimezoneDefault        = "UTC"
	MisfireDefault         = MisfireRunOnce
	MisfireGraceDefault    = 10 * time.Second
	MisfireWindowDefault   = time.Hour
	OverlapDefault         = OverlapAllow
	TimeoutDefault         = time.Hour
	RetryBackoffDefault    = time.Second
	RetryBackoffMaxDefault = 5 * time.Minute
	HTTPMethodDefault      = "GET"
)

// Spec is one job definition, as written in a job file. Durations are Go duration
// strings ("90s", "10m") in files and JSON.
type Spec struct {
	Name     string   `json:"name" toml:"name"`
	Schedule []string `json:"schedule,omitempty" toml:"schedule"`
	Timezone string   `json:"timezone,omitempty" toml:"timezone"`
	Start    string   `json:"start,omitempty" toml:"start"` // RFC 3339; no occurrence before it
	End      string   `json:"end,omitempty" toml:"end"`     // RFC 3339; no occurrence after it
	Blackout []string `json:"blackout,omitempty" toml:"blackout"`

	Misfire       string   `json:"misfire,omitempty" toml:"misfire"`
	MisfireGrace  Duration `json:"misfire_grace,omitempty" toml:"misfire_grace"`
	MisfireWindow Duration `json:"misfire_window,omitempty" toml:"misfire_window"`
	Overlap       string   `json:"overlap,omitempty" toml:"overlap"`

	Timeout         Duration `json:"timeout,omitempty" toml:"timeout"`
	Retries         int      `json:"retries,omitempty" toml:"retries"`
	RetryBackoff    Duration `json:"retry_backoff,omitempty" toml:"retry_backoff"`
	RetryBackoffMax Duration `json:"retry_backoff_max,omitempty" toml:"retry_backoff_max"`
	Tags            []string `json:"tags,omitempty" toml:"tags"`
	// Balance overrides the cluster's load-balancing algorithm for this job's runs.
	Balance string `json:"balance,omitempty" toml:"balance"`
	// Copies is how many verified copies of each output file the cluster keeps, on as
	// many nodes (at most the live nodes); 0: the server's output_copies.
	Copies int `json:"copies,omitempty" toml:"copies"`
	// LateAfter raises run.late when a scheduled run starts more than this after its
	// scheduled time; 0: never.
	LateAfter Duration `json:"late_after,omitempty" toml:"late_after"`
	// LongAfter raises run.long when a run has been running this long; 0: only the
	// median rule (twice the median of the job's last 20 succeeded runs, with 3 or more).
	LongAfter Duration `json:"long_after,omitempty" toml:"long_after"`

	Command *Command  `json:"command,omitempty" toml:"command"`
	HTTP    *HTTP     `json:"http,omitempty" toml:"http"`
	Noop    *Noop     `json:"noop,omitempty" toml:"noop"`
	Deliver []Deliver `json:"deliver,omitempty" toml:"deliver"`
}

// Command runs a program. Argv[0] is looked up on PATH; no shell is involved unless Shell
// is set, in which case Argv must hold exactly one element: the script given to /bin/sh -c.
type Command struct {
	Argv  []string          `json:"argv" toml:"argv"`
	Env   map[string]string `json:"env,omitempty" toml:"env"`
	Dir   string            `json:"dir,omitempty" toml:"dir"`
	Shell bool              `json:"shell,omitempty" toml:"shell"`
	// InheritEnv names server variables the command gets on purpose; besides them it
	// sees only its Env, the TANDEM_* run variables, PATH, HOME, LANG and TZ.
	InheritEnv []string `json:"inherit_env,omitempty" toml:"inherit_env"`
	// RunAs names the Unix user the command runs as; the server must allow it
	// (run_as_allowed). Default: the server's run_as, else the server's own user.
	RunAs string `json:"run_as,omitempty" toml:"run_as"`
}

// HTTP sends one request. The run succeeds when the response status is in ExpectStatus
// (any 2xx when empty).
type HTTP struct {
	Method       string            `json:"method,omitempty" toml:"method"`
	URL          string            `json:"url" toml:"url"`
	Headers      map[string]string `json:"headers,omitempty" toml:"headers"`
	Body         string            `json:"body,omitempty" toml:"body"`
	ExpectStatus []int             `json:"expect_status,omitempty" toml:"expect_status"`
}

// Noop does nothing inside the worker's process, optionally for Sleep, and succeeds: a
// job that checks a cluster dispatches and executes, and measures tandem's own overhead.
// It honours the job's timeout and a cancel request like any executor.
type Noop struct {
	Sleep Duration `json:"sleep,omitempty" toml:"sleep"`
}
