package store

import (
	"context"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// Jobs is the repository's concern of job definitions. A job's schedules are stored with
// it (Schedules reads them for the scheduler). Every change bumps ConfigVersion and
// writes its event (job.applied, job.deleted, job.paused) in its own transaction.
type Jobs interface {
	// JobApply creates or replaces jobs by name, all or none; ErrConflict when a job
	// changed since the caller read it (JobApplyParams.IfVersion).
	JobApply(ctx context.Context, p JobApplyParams) ([]JobApplyResult, error)
	// JobGet returns one job (ErrNotFound).
	JobGet(ctx context.Context, name string) (Job, error)
	// JobList returns every job by name.
	JobList(ctx context.Context) ([]Job, error)
	// JobDelete removes a job and its schedules (ErrNotFound); its runs stay as history.
	JobDelete(ctx context.Context, p JobDeleteParams) error
	// JobSetPaused pauses or resumes a job (ErrNotFound).
	JobSetPaused(ctx context.Context, p JobSetPausedParams) (Job, error)
}

// Job is a stored job definition.
type Job struct {
	ID        int64
	Name      string
	Spec      job.Spec
	Paused    bool
	CreatedAt time.Time
	UpdatedAt time.Time
	Schedules []Schedule
}

// JobApplyParams creates or replaces jobs by name, all or none. Schedules whose Key is
// unchanged keep their firing state; the others start afresh.
type JobApplyParams struct {
	Jobs []JobDef
	Now  time.Time
	// Audit, when set, names who applied: each job gets a job.applied event saying so.
	Audit *Audit
}

// JobDeleteParams are the arguments of JobDelete.
type JobDeleteParams struct {
	Name string
	// Audit, when set, names who deleted: a job.deleted event says so.
	Audit *Audit
}

// JobDef is one job to apply: its validated spec and its schedules' identities.
type JobDef struct {
	Spec      job.Spec
	Schedules []ScheduleSpec
}

// JobApplyResult says what JobApply did.
type JobApplyResult struct {
	Job     Job
	Created bool
}

// JobSetPausedParams pauses or resumes a job. Resuming restarts its schedules from now, so
// the paused time counts as neither fired nor missed.
type JobSetPausedParams struct {
	Name   string
	Paused bool
	Now    time.Time
	// Audit, when set, names who asked: a job.paused or job.resumed event says so.
	Audit *Audit
}
