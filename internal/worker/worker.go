package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/output"
	"github.com/tandemhq/tandem/internal/store"
)

// PollDefault is how often a worker looks for runs assigned to it when nobody wakes it.
const PollDefault = 250 * time.Millisecond

// Store is what a Worker needs of the repository: its runs, and the job of each.
type Store interface {
	store.Runs
	JobGet(ctx context.Context, name string) (store.Job, error)
}

// Params configures a Worker.
type Params struct {
	Store       Store
	Log         *slog.Logger
	Node        string
	DataDir     string // outputs go to DataDir/outputs/RUN/ATTEMPT (see output.Layout)
	Capacity    int
	OutputLimit int64
	HTTP        *http.Client
	Now         func() time.Time
	Poll        time.Duration
	// Guard is the executable a command runs under, so that its whole process group dies
	// with this process (see Launcher); "" for none.
	Guard string
	// OnFinish, if set, is called after an attempt's result is recorded (wakes the
	// dispatcher so freed capacity is used at once).
	OnFinish func()
	// Holder names this process of the node (its claim, see store.NodeClaimParams): the
	// runs a stop hands back are handed back only while the node id is still this
	// process's. "" hands them back without that check.
	Holder string
	// OnOutputs, if set, is called after results with output files were recorded
	// (hints the copiers).
	OnOutputs func()
	// OutputHashed, if set, is told the SHA-256 of each output file as it is kept, so
	// that the file is not read again for its digest when it is first sent.
	OutputHashed func(ref store.OutputRef, sha256 string)
	// Ended, if set, is told how each attempt this worker ran ended and how long it ran
	// (for the metrics).
	Ended func(job string, state store.RunState, took time.Duration)
	// OutputMaxBytes bounds an attempt's output files, all together; 0: no bound.
	OutputMaxBytes int64
	// RunAs is the user command jobs run as ("": this process's user); RunAsAllowed
	// the users a job may name in its command.run_as.
	RunAs        string
	RunAsAllowed []string
	// Secret returns a secret's value ({{secret "NAME"}} in a job), decrypted on this
	// worker at run time; nil: this node resolves none.
	Secret func(ctx context.Context, name string) (string, error)
}

// Worker executes the runs assigned to its node, at most Capacity at a time. Each attempt
// is reported with the attempt token it was given, so a worker that lost its run to a
// re-assignment cannot overwrite the new attempt's result.
//
// The dispatcher's assignment is the attempt's start (store.RunAssignParams.Start): the
// run is running from then on, and the worker begins what it finds running on its node
// without writing again. What it has begun it tells by the attempt token, kept until the
// run is no longer listed on the node under it, so that a listing read before a result
// was recorded never begins an attempt twice. Its first listing tells it what an earlier
// process of the node left running: those attempts may have executed, and they are ended
// as interrupted (retried if attempts are left), never begun again. A stop hands back the
// runs given to the node that this process had not begun, without spending their attempt.
// Runs assigned without the start (state assigned) are started as before (RunStartBatch).
type Worker struct {
	p      Params
	wake   chan struct{}
	launch *Launcher

	mu         sync.Mutex
	active     map[int64]*attempt    // begun, result not yet recorded
	live       map[int64]*liveOutput // what running commands wrote so far, by run
	unrecorded []store.RunFinishParams
	stopped    bool
	listed     bool                    // the first listing was read
	claimedAt  time.Time               // when this process claimed the node id, by the repository's clock
	known      map[store.RunToken]bool // attempts begun, being started, or left by an earlier process
	groups     groupSlots              // the files recording running commands' process groups
	left       map[store.RunToken]bool // attempts left by an earlier process, not yet ended

	fmu       sync.Mutex
	results   []store.RunFinishParams // waiting to be recorded
	recording bool                    // a goroutine is recording results
	// runCtx is the parent of every attempt: independent of Run's context so a shutdown
	// can give running attempts a grace period before canceling them.
	runCtx    context.Context
	cancelAll context.CancelCauseFunc
	wg        sync.WaitGroup
}

type attempt struct {
	run    store.Run
	cancel context.CancelCauseFunc
}

// New returns a worker; call Run to start it and Shutdown to stop it.
func New(p Params) *Worker {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Poll <= 0 {
		p.Poll = PollDefault
	}
	if p.HTTP == nil {
		p.HTTP = &http.Client{}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Worker{p: p, wake: make(chan struct{}, 1), launch: NewLauncher(p.Guard), active: map[int64]*attempt{},
		live: map[int64]*liveOutput{}, known: map[store.RunToken]bool{}, left: map[store.RunToken]bool{}, runCtx: ctx, cancelAll: cancel}
}

// Claimed tells the worker when this process claimed its node id, by the repository's
// clock; call it before Run. On its first listing, a running attempt assigned before
// then is one an earlier process left (and is ended as interrupted); one assigned since
// is this process's own, assigned between the claim and the listing, and is begun.
// Without it every running attempt of the first listing counts as left.
func (w *Worker) Claimed(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.claimedAt = at
}

// leftBefore reports whether r, running on the first listing, is an earlier process's.
func (w *Worker) leftBefore(r store.Run) bool {
	return w.claimedAt.IsZero() || r.StartedAt == nil || r.StartedAt.Before(w.claimedAt)
}

// Wake asks the worker to look for assigned runs now. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Running returns how many attempts are executing.
func (w *Worker) Running() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.active)
}

// Cancel stops a running attempt of the run on this node, if there is one.
func (w *Worker) Cancel(runID int64, why string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.active[runID]
	if ok {
		a.cancel(errors.New(why))
	}
	return ok
}

// Run takes assigned runs until ctx is canceled. Attempts already started go on; call
// Shutdown to wait for them.
func (w *Worker) Run(ctx context.Context) error {
	tick := time.NewTicker(w.p.Poll)
	defer tick.Stop()
	for {
		if err := w.poll(ctx); err != nil && ctx.Err() == nil {
			w.p.Log.Warn("polling for assigned runs failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-w.wake:
		}
	}
}

// recover ends the attempts this node's previous process left running: nothing executes
// them any more. They fail (and are retried if attempts are left). One that cannot be
// recorded now is tried again on the next poll.
func (w *Worker) recover(ctx context.Context, runs []store.Run) {
	for _, r := range runs {
		now := w.p.Now()
		_, err := store.RunFinish(ctx, w.p.Store, store.RunFinishParams{RunID: r.ID, Token: r.Token, Now: now, State: store.RunFailed,
			Reason: "interrupted: the node's previous process ended while the run was running", RetryAt: &now})

		if err != nil && !errors.Is(err, store.ErrStale) {
			if ctx.Err() == nil {
				w.p.Log.Error("cannot end a run left from an earlier process", "run", r.ID, "err", err)
			}
			continue
		}
		w.mu.Lock()
		delete(w.left, tokenOf(r))
		w.mu.Unlock()
		w.p.Log.Warn("run interrupted by a restart", "run", r.ID, "job", r.Job, "attempt", r.Attempt)
	}
}

// tokenOf names the attempt r is in.
func tokenOf(r store.Run) store.RunToken { return store.RunToken{ID: r.ID, Token: r.Token} }

func (w *Worker) poll(ctx context.Context) error {
	w.retryUnrecorded()
	runs, err := w.p.Store.RunListForNode(ctx, w.p.Node)
	if err != nil {
		return err
	}
	w.stopSuperseded(runs)
	var starts, begins, leftovers []store.Run
	w.mu.Lock()
	first := !w.listed
	w.listed = true
	listed := make(map[store.RunToken]bool, len(runs))
	for _, r := range runs {
		listed[tokenOf(r)] = true
	}
	// An attempt no longer listed ended (or was taken back): its token never comes back.
	for tok := range w.known {
		if !listed[tok] {
			delete(w.known, tok)
			delete(w.left, tok)
		}
	}
	free := w.p.Capacity - len(w.active)
	for _, r := range runs {
		a, running := w.active[r.ID]
		switch {
		case running:
			if r.CancelRequested {
				a.cancel(errors.New(r.Reason))
			}
		case r.State == store.RunRunning && (first && w.leftBefore(r) || w.left[tokenOf(r)]):
			w.known[tokenOf(r)], w.left[tokenOf(r)] = true, true
			leftovers = append(leftovers, r)
		case w.known[tokenOf(r)] || w.stopped || len(starts)+len(begins) >= free:
		case r.State == store.RunAssigned:
			w.known[tokenOf(r)] = true
			starts = append(starts, r)
		case r.State == store.RunRunning:
			w.known[tokenOf(r)] = true
			begins = append(begins, r)
		}
	}
	// Counted before the runs are begun, so that Shutdown, once it has set stopped,
	// waits for every run this worker began.
	w.wg.Add(len(starts) + len(begins))
	w.mu.Unlock()
	if len(leftovers) > 0 {
		w.recover(ctx, leftovers)
	}
	if len(starts)+len(begins) > 0 {
		w.start(ctx, starts, begins)
	}
	return nil
}

// stopSuperseded stops attempts whose run is no longer this node's under the same token:
// the primary declared this node lost and gave the run to another attempt. Their results
// would be refused anyway; stopping them frees the node and avoids doubled side effects.
func (w *Worker) stopSuperseded(runs []store.Run) {
	mine := make(map[int64]string, len(runs))
	for _, r := range runs {
		mine[r.ID] = r.Token
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, a := range w.active {
		if tok, ok := mine[id]; !ok || tok != a.run.Token {
			a.cancel(errSuperseded)
		}
	}
}

// startTimeout bounds the reads and the transaction that start a batch of runs.
const startTimeout = 30 * time.Second

// errRetryLater marks a job whose definition could not be read: its runs stay assigned
// and the next poll tries again.
var errRetryLater = errors.New("job definition unreadable for now")

var errSuperseded = errors.New("attempt superseded: the run was given to another attempt (this node was declared lost)")

// start begins the runs: begins were started by their assignment; starts are marked as
// running (with their tokens) in one transaction first. Each executes in its own
// goroutine. The caller has counted them in wg and noted their tokens; the runs that
// could not be begun (taken back, canceled meanwhile, their job unreadable for now) are
// uncounted here, and those to try again on the next poll forgotten.
//
// Each job's definition is read once for the batch, before any run is begun: a run is
// never begun without it. The reads and the start outlive ctx (a stop that begins
// meanwhile): the runs are this node's to execute, and Shutdown waits for them.
func (w *Worker) start(ctx context.Context, starts, begins []store.Run) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	specs := map[string]*store.Job{}
	specErr := map[string]error{}
	readable := func(r store.Run) bool {
		if _, ok := specs[r.Job]; !ok && specErr[r.Job] == nil {
			j, err := w.p.Store.JobGet(sctx, r.Job)
			switch {
			case err == nil:
				specs[r.Job] = &j
			case errors.Is(err, store.ErrNotFound):
				specErr[r.Job] = err // begun, and failed: the job is gone
			default:
				w.p.Log.Warn("cannot read a job's definition; its runs wait", "job", r.Job, "err", err)
				specErr[r.Job] = errRetryLater
			}
		}
		return specErr[r.Job] != errRetryLater
	}
	var toks []store.RunToken
	var later []store.Run // not begun: tried again on the next poll
	for _, r := range starts {
		if readable(r) {
			toks = append(toks, store.RunToken{ID: r.ID, Token: r.Token})
		} else {
			later = append(later, r)
		}
	}
	var run []store.Run
	if len(toks) > 0 {
		started, err := w.p.Store.RunStartBatch(sctx, store.RunStartBatchParams{Now: w.p.Now(), Runs: toks})
		if err != nil {
			w.p.Log.Warn("cannot start runs", "runs", len(toks), "err", err)
		}
		ok := map[int64]bool{}
		for _, r := range started {
			ok[r.ID] = true
		}
		for _, r := range starts {
			if !ok[r.ID] && !slices.ContainsFunc(later, func(l store.Run) bool { return l.ID == r.ID }) {
				later = append(later, r)
			}
		}
		run = started
	}
	for _, r := range begins {
		if readable(r) {
			run = append(run, r)
		} else {
			later = append(later, r)
		}
	}
	w.mu.Lock()
	for _, r := range later {
		delete(w.known, tokenOf(r))
		w.wg.Done()
	}
	w.mu.Unlock()
	for _, run := range run {
		actx, cancel := context.WithCancelCause(w.runCtx)
		w.mu.Lock()
		w.active[run.ID] = &attempt{run: run, cancel: cancel}
		w.mu.Unlock()
		j, jerr := specs[run.Job], specErr[run.Job]
		go func() {
			defer w.wg.Done()
			defer cancel(nil)
			var p store.RunFinishParams
			switch {
			case jerr != nil:
				p = store.RunFinishParams{State: store.RunFailed, Reason: fmt.Sprintf("job definition: %v", jerr)}
			case run.CancelRequested:
				// Asked to stop before it was begun: it ends without executing.
				p = store.RunFinishParams{State: store.RunCanceled, Reason: run.Reason}
			default:
				p = w.execute(actx, run, j.Spec)
			}
			// Whatever said why (an executor, a job definition, a cancel), a reason shows
			// no URL password or query value.
			p.Reason = auth.RedactURLs(p.Reason)
			p.RunID, p.Token, p.Now = run.ID, run.Token, w.p.Now()
			w.record(p)
		}()
	}
}

// record queues an attempt's result for recording and, unless another attempt's
// goroutine is recording already, records the queued results itself, many per
// transaction, until none is left (group commit). An attempt counts as active until its
// result is recorded, so the node never holds more than its capacity.
func (w *Worker) record(p store.RunFinishParams) {
	w.fmu.Lock()
	w.results = append(w.results, p)
	if w.recording {
		w.fmu.Unlock()
		return
	}
	w.recording = true
	w.fmu.Unlock()
	runtime.Gosched() // let the attempts that ended with this one queue their results too
	w.fmu.Lock()
	for len(w.results) > 0 {
		batch := w.results
		w.results = nil
		w.fmu.Unlock()
		w.recordBatch(batch)
		w.fmu.Lock()
	}
	w.recording = false
	w.fmu.Unlock()
}

// RecordAttemptsDefault is how often recording a batch of results is tried at once when
// the repository fails (the batch is one transaction: a failed try changed nothing).
// Results still unrecorded then are kept and tried again with every poll: a result is
// never dropped while its attempt may still be current.
const RecordAttemptsDefault = 3

// recordBatch records results in one transaction, retrying a failed transaction, then
// frees the capacity of the attempts whose results are settled (recorded, or refused for
// good); the others wait for the next poll (retryUnrecorded).
func (w *Worker) recordBatch(batch []store.RunFinishParams) {
	// The results are recorded even when the attempts were canceled or the worker is
	// shutting down: with a context that no cancellation reaches.
	ctx := context.WithoutCancel(w.runCtx)
	var errs []error
	var err error
	for try := range RecordAttemptsDefault {
		if errs, err = w.p.Store.RunFinishBatch(ctx, store.RunFinishBatchParams{Items: batch}); err == nil {
			break
		}
		w.p.Log.Warn("cannot record results; trying again", "runs", len(batch), "try", try+1, "err", err)
		time.Sleep(time.Duration(try+1) * 100 * time.Millisecond)
	}
	var settled []int64
	var later []store.RunFinishParams
	for i, p := range batch {
		var e error
		switch {
		case err == nil:
			e = errs[i]
		case len(batch) > 1:
			// One result the repository refuses must not cost the others theirs.
			_, e = store.RunFinish(ctx, w.p.Store, p)
		default:
			e = err
		}
		switch {
		case e == nil:
			settled = append(settled, p.RunID)
		case errors.Is(e, store.ErrStale):
			// Expected after this node was declared lost: the run went to another attempt.
			w.p.Log.Info("result refused: the attempt was superseded", "run", p.RunID, "err", e)
			settled = append(settled, p.RunID)
		case errors.Is(e, store.ErrNotFound):
			w.p.Log.Error("cannot record the run's result: the run is gone", "run", p.RunID, "err", e)
			settled = append(settled, p.RunID)
		default:
			w.p.Log.Warn("cannot record the run's result yet; keeping it to try again", "run", p.RunID, "err", e)
			later = append(later, p)
		}
	}
	w.mu.Lock()
	for _, id := range settled {
		delete(w.active, id)
	}
	w.unrecorded = append(w.unrecorded, later...)
	w.mu.Unlock()
	if len(settled) > 0 {
		if w.p.OnFinish != nil {
			w.p.OnFinish()
		}
		if w.p.OnOutputs != nil && withOutputs(batch) {
			w.p.OnOutputs()
		}
		w.Wake()
	}
}

// retryUnrecorded tries again to record the results the repository refused for a
// transient reason. Their attempts stay active (holding capacity) until then.
func (w *Worker) retryUnrecorded() {
	w.mu.Lock()
	batch := w.unrecorded
	w.unrecorded = nil
	w.mu.Unlock()
	if len(batch) > 0 {
		w.recordBatch(batch)
	}
}

// liveOutput is what a running command has written so far.
type liveOutput struct {
	stdout, stderr *capture
	seen           map[string]string // secret values given to it, hidden from readers
}

// Live returns what the command of a run executing here has written so far (its first
// output_limit bytes of each stream, secrets hidden as in the run's record); ok is false
// when no command of that run runs here.
func (w *Worker) Live(runID int64) (stdout, stderr []byte, ok bool) {
	w.mu.Lock()
	lo := w.live[runID]
	w.mu.Unlock()
	if lo == nil {
		return nil, nil, false
	}
	o, _ := lo.stdout.bytes()
	e, _ := lo.stderr.bytes()
	return redactBytes(slices.Clone(o), lo.seen), redactBytes(slices.Clone(e), lo.seen), true
}

// execute runs one attempt of run with the job's spec and returns its result, to be
// recorded under the attempt's token.
func (w *Worker) execute(ctx context.Context, run store.Run, spec job.Spec) store.RunFinishParams {
	slot, recorded := w.groups.take(), false
	defer func() {
		if recorded {
			w.forgetGroup(slot, run.ID)
		}
		w.groups.put(slot)
	}()
	x := Execution{RunID: run.ID, Job: run.Job, Attempt: run.Attempt, Timeout: spec.Timeout.D(), OutputLimit: w.p.OutputLimit,
		Launcher: w.launch, Started: func(pgid int) { recorded = true; w.recordGroup(slot, run.ID, run.Attempt, pgid) }}
	if run.ScheduledAt != nil {
		x.ScheduledAt = *run.ScheduledAt
	}
	if spec.Noop == nil { // the no-op executor writes nothing
		var err error
		if x.OutputDir, err = output.NewLayout(w.p.DataDir).PrepareAttempt(run.ID, run.Attempt); err != nil {
			return store.RunFinishParams{State: store.RunFailed, Reason: err.Error()}
		}
	}
	if spec.Command != nil {
		var err error
		if x.RunAs, err = w.runAsFor(spec.Command.RunAs); err == nil && x.RunAs != nil {
			err = OpenOutputDir(w.p.DataDir, x.OutputDir, x.RunAs)
		}
		if err != nil {
			return store.RunFinishParams{State: store.RunFailed, Reason: err.Error()}
		}
		if x.RunAs != nil {
			defer func() {
				if err := ReclaimOutputDir(x.OutputDir); err != nil {
					w.p.Log.Warn("cannot take back the output directory from run_as", "run", run.ID, "user", x.RunAs.Name, "err", err)
				}
			}()
		}
	}
	seen := map[string]string{}
	spec, serr := w.resolveSecrets(ctx, spec, seen)
	if serr != nil {
		return store.RunFinishParams{State: store.RunFailed, Reason: "resolve secrets: " + redact(serr.Error(), seen)}
	}
	if spec.Command != nil {
		lo := &liveOutput{stdout: newCapture(x.outputLimit()), stderr: newCapture(x.outputLimit()), seen: seen}
		x.LiveStdout, x.LiveStderr = lo.stdout, lo.stderr
		w.mu.Lock()
		w.live[run.ID] = lo
		w.mu.Unlock()
		defer func() {
			w.mu.Lock()
			delete(w.live, run.ID)
			w.mu.Unlock()
		}()
	}
	w.p.Log.Info("run started", "run", run.ID, "job", run.Job, "attempt", run.Attempt)
	began := time.Now()
	var res Result
	switch {
	case spec.Command != nil:
		res = RunCommand(ctx, x, *spec.Command)
	case spec.HTTP != nil:
		res = RunHTTP(ctx, x, *spec.HTTP, w.p.HTTP)
	default:
		res = RunNoop(ctx, x, *spec.Noop)
	}
	p := store.RunFinishParams{ExitCode: &res.ExitCode, Stdout: redactBytes(res.Stdout, seen), Stderr: redactBytes(res.Stderr, seen)}
	p.Outputs, res.Err = w.keepOutputs(run, spec, res)
	switch {
	case res.Err == nil:
		p.State = store.RunSucceeded
	case res.Canceled && context.Cause(ctx) != nil && !errors.Is(context.Cause(ctx), errShutdown):
		p.State, p.Reason = store.RunCanceled, fmt.Sprintf("canceled: %v", context.Cause(ctx))
	default:
		p.State, p.Reason = store.RunFailed, res.Err.Error()
		if res.Canceled {
			p.Reason = "interrupted: the server shut down after its grace period"
		}
		retryAt := w.p.Now().Add(Backoff(spec, run.Attempt))
		p.RetryAt = &retryAt
	}
	if res.StdoutTruncated || res.StderrTruncated {
		p.Reason = join(p.Reason, fmt.Sprintf("output truncated to %d bytes per stream", x.outputLimit()))
	}
	p.Reason = redact(p.Reason, seen)
	w.p.Log.Info("run ended", "run", run.ID, "job", run.Job, "attempt", run.Attempt, "state", p.State, "exit_code", res.ExitCode, "reason", p.Reason, "outputs", len(p.Outputs))
	if w.p.Ended != nil {
		w.p.Ended(run.Job, p.State, time.Since(began))
	}
	return p
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// Backoff is the delay before attempt+1 after attempt failed: retry_backoff doubled for
// each earlier attempt, capped at retry_backoff_max.
func Backoff(spec job.Spec, attempt int) time.Duration {
	d := spec.RetryBackoff.D()
	for i := 1; i < attempt && d < spec.RetryBackoffMax.D(); i++ {
		d *= 2
	}
	return min(d, spec.RetryBackoffMax.D())
}

var errShutdown = errors.New("server shutting down")

// StopTaking makes the worker start no more runs; those running go on. Safe to call
// more than once.
func (w *Worker) StopTaking() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// Shutdown stops taking runs, hands back the runs given to this node that it had not
// begun, lets running attempts finish until ctx ends, then cancels them and waits until
// their results are recorded. Safe to call more than once.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.StopTaking()
	if err := w.handBack(ctx); err != nil && ctx.Err() == nil {
		w.p.Log.Warn("cannot hand back the runs this node had not begun; they are re-queued when it is declared lost", "err", err)
	}
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	defer w.launch.Close() // after the last command ended: see Launcher
	select {
	case <-done:
		return w.flushUnrecorded()
	case <-ctx.Done():
	}
	n := w.Running()
	w.cancelAll(errShutdown)
	<-done
	if n > 0 {
		w.p.Log.Warn("grace period over: canceled running runs", "count", n)
	}
	return w.flushUnrecorded()
}

// flushUnrecorded makes a last try to record what could not be; what still cannot is
// said, and the node's next process fails those runs as interrupted (recover), so they
// are retried.
func (w *Worker) flushUnrecorded() error {
	w.retryUnrecorded()
	w.mu.Lock()
	left := len(w.unrecorded)
	w.mu.Unlock()
	if left > 0 {
		return fmt.Errorf("stop worker: %d results could not be recorded; the next start of this node fails their runs as interrupted", left)
	}
	return nil
}

// handBack queues again, without spending their attempt, the runs started on this node
// by their assignment that this worker has not begun. Called once it takes no more
// runs; the node is closed to assignments by then (draining), so none comes after.
// Before its first listing the worker cannot tell what an earlier process left running
// from what it was given, and hands back nothing.
func (w *Worker) handBack(ctx context.Context) error {
	runs, err := w.p.Store.RunListForNode(ctx, w.p.Node)
	if err != nil {
		return err
	}
	var toks []store.RunToken
	w.mu.Lock()
	for _, r := range runs {
		if w.listed && r.State == store.RunRunning && !w.known[tokenOf(r)] && w.active[r.ID] == nil {
			toks = append(toks, store.RunToken{ID: r.ID, Token: r.Token})
		}
	}
	w.mu.Unlock()
	if len(toks) == 0 {
		return nil
	}
	ids, err := w.p.Store.RunRelease(ctx, store.RunReleaseParams{Node: w.p.Node, Holder: w.p.Holder, Runs: toks, Now: w.p.Now(),
		Reason: fmt.Sprintf("node %s stopped before beginning the run; queued again", w.p.Node)})
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		w.p.Log.Info(fmt.Sprintf("handed back %d runs this node had not begun", len(ids)), "runs", ids)
	}
	return nil
}
