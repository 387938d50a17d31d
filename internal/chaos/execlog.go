package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/chaos/history"
	"github.com/tandemhq/tandem/internal/client"
)

// ExecLogPath is where a job's runs append their execution lines.
func (c *Cluster) ExecLogPath(job string) string {
	return filepath.Join(c.opts.Dir, job+".exec")
}

// ExecLog reads a job's execution log; a log not yet written is empty.
func (c *Cluster) ExecLog(job string) ([]history.Exec, error) { return ReadExecLog(c.ExecLogPath(job)) }

// ExecScript is a /bin/sh script that appends "RUNID ATTEMPT NODE UNIXNANO" to path, then
// runs then (if not empty). NODE comes from the server's environment (the harness sets
// it; the job inherits it by name, inherit_env), the others from what tandem gives every
// command. One short write with O_APPEND
// is atomic, so concurrent runs on several nodes never interleave their lines.
func ExecScript(path, then string) string {
	s := `echo "$TANDEM_RUN_ID $TANDEM_ATTEMPT $NODE $(date +%s%N)" >> ` + shellQuote(path)
	if then != "" {
		s += " && " + then
	}
	return s
}

// WatchedExecScript is ExecScript for a job whose executions also witness overlaps: its
// line carries the shell's pid ("pid=N"), and before running then it looks for every
// earlier attempt of the same run in the log whose shell is still alive (and still that
// run's: its environment names the run), and appends "RUNID ATTEMPT NODE UNIXNANO
// alive=K" for each.
func WatchedExecScript(path, then string) string {
	q := shellQuote(path)
	s := `echo "$TANDEM_RUN_ID $TANDEM_ATTEMPT $NODE $(date +%s%N) pid=$$" >> ` + q + `
grep "^$TANDEM_RUN_ID " ` + q + ` | while read r a n t p; do
  case "$p" in pid=*) ;; *) continue ;; esac
  pid=${p#pid=}
  [ "$a" = "$TANDEM_ATTEMPT" ] && continue
  st=$(cut -d" " -f3 /proc/$pid/stat 2>/dev/null)
  [ -n "$st" ] && [ "$st" != Z ] || continue
  tr '\0' '\n' < /proc/$pid/environ 2>/dev/null | grep -qx "TANDEM_RUN_ID=$TANDEM_RUN_ID" || continue
  echo "$TANDEM_RUN_ID $TANDEM_ATTEMPT $NODE $(date +%s%N) alive=$a" >> ` + q + `
done`
	if then != "" {
		s += "\n" + then
	}
	return s
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// ReadExecLog parses an execution log's execution lines.
func ReadExecLog(path string) ([]history.Exec, error) {
	execs, _, err := readExecLog(path)
	return execs, err
}

// ReadOverlaps parses an execution log's overlap lines (see WatchedExecScript).
func ReadOverlaps(path string) ([]history.Overlap, error) {
	_, overlaps, err := readExecLog(path)
	return overlaps, err
}

func readExecLog(path string) ([]history.Exec, []history.Overlap, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read execution log: %w", err)
	}
	defer f.Close()
	execs, overlaps, err := history.ParseExecLog(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read execution log %s: %w", path, err)
	}
	return execs, overlaps, nil
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
	// Watch makes the executions witness overlaps of their own run (WatchedExecScript).
	Watch bool
	// Webhook, when set, gives the job a [[deliver]] entry posting to it on success,
	// signed with Secret (whsec_…) when that is set.
	Webhook, Secret string
	// Copies, when not 0, sets the job's copies (of its output files).
	Copies int
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
		"command": map[string]any{"argv": []string{"/bin/sh", "-c", script(c.ExecLogPath(j.Name), j)},
			"inherit_env": []string{"NODE"}},
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
	if j.Copies > 0 {
		doc["copies"] = j.Copies
	}
	if j.Webhook != "" {
		entry := map[string]any{"webhook": j.Webhook}
		if j.Secret != "" {
			entry["secret"] = j.Secret
		}
		doc["deliver"] = []map[string]any{entry}
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

func script(path string, j JobSpec) string {
	if j.Watch {
		return WatchedExecScript(path, j.Then)
	}
	return ExecScript(path, j.Then)
}
