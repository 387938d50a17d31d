package worker

import (
	"errors"
	"os"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/output"
	"github.com/tandemhq/tandem/internal/store"
)

// keepOutputs turns an attempt's output files into the records its result carries,
// each with the copies its job asks for, and makes them owner only. Files over
// output_max_bytes, all together, are deleted and fail the attempt (the returned error,
// joined to the attempt's own).
func (w *Worker) keepOutputs(run store.Run, spec job.Spec, res Result) ([]store.Output, error) {
	if len(res.Outputs) == 0 {
		return nil, res.Err
	}
	layout := output.NewLayout(w.p.DataDir)
	sizes := make([]int64, len(res.Outputs))
	names := make([]string, len(res.Outputs))
	for i, o := range res.Outputs {
		sizes[i], names[i] = o.Size, o.Name
	}
	if err := output.Limit(sizes, w.p.OutputMaxBytes); err != nil {
		_ = os.RemoveAll(layout.AttemptDir(run.ID, run.Attempt))
		return nil, errors.Join(res.Err, err)
	}
	if err := layout.SealFiles(run.ID, run.Attempt, names); err != nil {
		w.p.Log.Warn("cannot make output files owner only", "run", run.ID, "err", err)
	}
	outs := make([]store.Output, len(res.Outputs))
	for i, o := range res.Outputs {
		outs[i] = store.Output{Name: o.Name, Size: o.Size, SHA256: o.SHA256, Copies: spec.Copies}
		if w.p.OutputHashed != nil {
			w.p.OutputHashed(store.OutputRef{RunID: run.ID, Attempt: run.Attempt, Name: o.Name}, o.SHA256)
		}
	}
	return outs, res.Err
}

func withOutputs(batch []store.RunFinishParams) bool {
	for _, p := range batch {
		if len(p.Outputs) > 0 {
			return true
		}
	}
	return false
}
