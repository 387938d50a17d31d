package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/testutil"
	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: the executors start
// drains, watchers and HTTP connections that must all end with the attempt.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testGrace stands in for KillGraceDefault so escalation tests take a moment, not 5s.
const testGrace = 200 * time.Millisecond

// newExecution returns an attempt with a fresh output directory and recognisable values.
func newExecution(t *testing.T) Execution {
	t.Helper()
	return Execution{
		RunID:       42,
		Job:         "daily-sales",
		Attempt:     2,
		ScheduledAt: time.Date(2026, 3, 1, 8, 0, 0, 0, time.FixedZone("EET", 2*3600)),
		OutputDir:   t.TempDir(),
		KillGrace:   testGrace,
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// readPID waits for a child to have written its pid (and a newline) to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	testutil.Wait(t, 10*time.Second, "pid file "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// processRunning reports whether pid is alive. A killed process whose parent is gone
// stays a zombie until init reaps it, and some container inits never do: a zombie no
// longer runs, so it counts as gone.
func processRunning(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')' since comm may hold anything.
	i := bytes.LastIndexByte(b, ')')
	return err != nil || i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func waitProcessGone(t *testing.T, pid int) {
	t.Helper()
	testutil.Wait(t, 10*time.Second, fmt.Sprintf("process %d to end", pid), func() bool { return !processRunning(pid) })
}

func TestMarkStopped(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	withCause, cancelCause := context.WithCancelCause(context.Background())
	cancelCause(errors.New("replaced by run 7"))
	timedOut, cancelTimeout := Execution{Timeout: time.Nanosecond}.attemptContext(context.Background())
	defer cancelTimeout()
	<-timedOut.Done()
	callerDeadline, cancelDeadline := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancelDeadline()
	<-callerDeadline.Done()

	for _, tc := range []struct {
		name               string
		ctx                context.Context
		want               string
		timedOut, canceled bool
	}{
		{"canceled", canceled, "canceled", false, true},
		{"cause kept", withCause, "canceled: replaced by run 7", false, true},
		{"own timeout", timedOut, "timed out after 1ns", true, false},
		{"caller deadline is not ours", callerDeadline, "canceled: context deadline exceeded", false, true},
	} {
		var r Result
		r.markStopped(tc.ctx)
		if errText(r.Err) != tc.want || r.TimedOut != tc.timedOut || r.Canceled != tc.canceled {
			t.Errorf("%s: got Err %q TimedOut %v Canceled %v, want %q %v %v",
				tc.name, errText(r.Err), r.TimedOut, r.Canceled, tc.want, tc.timedOut, tc.canceled)
		}
	}
}
