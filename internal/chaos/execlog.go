package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/client"
)

// Exec is one line of an execution log: a run's attempt began executing on a node. The
// log lives outside the repository, written by the job's own command, so it witnesses
// what really ran whatever the repository says.
type Exec struct {
	Run     int64
	Attempt int
	Node    string
	At      time.Time
	Line    int // line number in the log, from 1
}

// ExecLogPath is where a job's runs append their execution lines.
func (c *Cluster) ExecLogPath(job string) string {
	return filepath.Join(c.opts.Dir, job+".exec")
}

// ExecLog reads a job's execution log; a log not yet written is empty.
func (c *Cluster) ExecLog(job string) ([]Exec, error) { return ReadExecLog(c.ExecLogPath(job)) }

// ExecScript is a /bin/sh script that appends "RUNID ATTEMPT NODE UNIXNANO" to path, then
// runs then (if not empty). NODE comes from the server's environment (the harness sets
// it), the others from what tandem gives every command. One short write with O_APPEND
// is atomic, so concurrent runs on several nodes never interleave their lines.
func ExecScript(path, then string) string {
	s := `echo "$TANDEM_RUN_ID $TANDEM_ATTEMPT $NODE $(date +%s%N)" >> ` + shellQuote(path)
	if then != "" {
		s += " && " + then
	}
	return s
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// ReadExecLog parses an execution log.
func ReadExecLog(path string) ([]Exec, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read execution log: %w", err)
	}
	defer f.Close()
	var out []Exec
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			return nil, fmt.Errorf("read execution log %s:%d: want 4 fields, got %q", path, n, sc.Text())
		}
		run, err1 := strconv.ParseInt(f[0], 10, 64)
		attempt, err2 := strconv.Atoi(f[1])
		nanos, err3 := strconv.ParseInt(f[3], 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("read execution log %s:%d: %w", path, n, err)
		}
		out = append(out, Exec{Run: run, Attempt: attempt, Node: f[2], At: time.Unix(0, nanos), Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read execution log: %w", err)
	}
	return out, nil
}

// JobSpec is a test job: a shell script that writes its execution line first.
type JobSpec struct {
	Name     string
	Schedule []string // none: on-demand only
	Misfire  string   // default run-all, so that every occurrence is a run or a record
	Then     string   // shell run after the execution line, e.g. "sleep 3"
	Retries  int
	Tags     []string
	// Overlap is the overlap policy ("" keeps the default, allow).
	Overlap string
	// MisfireGrace and MisfireWindow, when not 0, set misfire_grace and misfire_window.
	MisfireGrace, MisfireWindow time.Duration
	// RetryBackoff, when not 0, sets retry_backoff (and retry_backoff_max to 4 times it).
	RetryBackoff time.Duration
}

// Apply creates or replaces a test job whose command appends to the job's execution log.
func (c *Cluster) Apply(ctx context.Context, j JobSpec) error {
	if j.Misfire == "" {
		j.Misfire = "run-all"
	}
	doc := map[string]any{
		"name":     j.Name,
		"schedule": j.Schedule,
		"misfire":  j.Misfire,
		"command":  map[string]any{"argv": []string{"/bin/sh", "-c", ExecScript(c.ExecLogPath(j.Name), j.Then)}},
	}
	if j.Schedule == nil {
		doc["schedule"] = []string{}
	}
	if j.Retries > 0 {
		doc["retries"] = j.Retries
	}
	if len(j.Tags) > 0 {
		doc["tags"] = j.Tags
	}
	if j.Overlap != "" {
		doc["overlap"] = j.Overlap
	}
	if j.MisfireGrace > 0 {
		doc["misfire_grace"] = j.MisfireGrace.String()
	}
	if j.MisfireWindow > 0 {
		doc["misfire_window"] = j.MisfireWindow.String()
	}
	if j.RetryBackoff > 0 {
		doc["retry_backoff"] = j.RetryBackoff.String()
		doc["retry_backoff_max"] = (4 * j.RetryBackoff).String()
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("apply job %s: %w", j.Name, err)
	}
	// A refused job ends the wait at once; an unreachable server (a failover under
	// way) is tried again.
	var refused error
	err = Poll(ctx, 100*time.Millisecond, "job "+j.Name+" applied", func(ctx context.Context) (bool, string, error) {
		_, err := c.Client().JobApply(ctx, data, "json")
		if ce := (*client.Error)(nil); errors.As(err, &ce) && ce.Status < 500 {
			refused = err
			return true, "", nil
		}
		return err == nil, "", err
	})
	if err := errors.Join(err, refused); err != nil {
		return fmt.Errorf("apply job %s: %w", j.Name, err)
	}
	return nil
}
