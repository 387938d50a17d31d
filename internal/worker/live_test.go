package worker

import (
	"context"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// A running command's output reaches the live writers as it is written, before the
// command ends.
func TestRunCommandLiveOutput(t *testing.T) {
	t.Parallel()
	x := newExecution(t)
	out, errOut := newCapture(1<<10), newCapture(1<<10)
	x.LiveStdout, x.LiveStderr = out, errOut
	done := make(chan Result, 1)
	go func() {
		done <- RunCommand(context.Background(), x, job.Command{Argv: []string{"sh", "-c", "echo early; echo oops >&2; sleep 2; echo late"}})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		o, _ := out.bytes()
		e, _ := errOut.bytes()
		if string(o) == "early\n" && string(e) == "oops\n" {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("the command ended (%q) before its early output was seen live (%q, %q)", r.Stdout, o, e)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("live output: %q, %q", o, e)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := <-done
	checkSuccess(t, r)
	if o, _ := out.bytes(); string(o) != "early\nlate\n" || string(r.Stdout) != "early\nlate\n" {
		t.Fatalf("live %q, kept %q", o, r.Stdout)
	}
}
