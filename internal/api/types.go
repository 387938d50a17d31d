// Package api is tandem's REST API: the HTTP handlers every node serves. The JSON shapes
// they exchange live in the leaf package wire, which the Go client imports instead of
// this one; they are documented in the README and stable: fields are added, never
// renamed or removed.
package api

import (
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// JobFrom converts a stored job.
func JobFrom(j store.Job) Job {
	v := Job{Spec: redactSpec(j.Spec), Paused: j.Paused, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
	if j.Spec.Schedule == nil {
		v.Schedule = []string{}
	}
	if j.Paused {
		return v
	}
	scheds, _ := j.Spec.Schedules()
	for _, sc := range j.Schedules {
		next := sc.NextFireAt
		if next == nil && !sc.Done && sc.Index < len(scheds) {
			// Not yet initialised by the scheduler (just applied or resumed): show
			// what it will compute.
			if t, ok := scheds[sc.Index].Next(time.Now()); ok {
				next = &t
			}
		}
		if next != nil && (v.NextFireAt == nil || next.Before(*v.NextFireAt)) {
			t := next.UTC()
			v.NextFireAt = &t
		}
	}
	return v
}

// RunFrom converts a stored run.
func RunFrom(r store.Run) Run {
	v := Run{ID: r.ID, Job: r.Job, State: string(r.State), Attempt: r.Attempt, MaxAttempts: r.MaxAttempts, Node: r.Node,
		Trigger: r.Trigger, ScheduledAt: r.ScheduledAt, ScheduledUntil: r.ScheduledUntil, Occurrences: r.Occurrences,
		CreatedAt: r.CreatedAt, NotBefore: r.NotBefore, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, ExitCode: r.ExitCode,
		Reason: r.Reason, CancelRequested: r.CancelRequested, Epoch: r.Epoch, ScheduleID: r.ScheduleID}
	if r.StartedAt != nil && r.FinishedAt != nil {
		d := r.FinishedAt.Sub(*r.StartedAt).Milliseconds()
		v.DurationMS = &d
	}
	return v
}

// OutputFrom converts a stored output.
func OutputFrom(o store.Output) Output {
	v := Output{Run: o.RunID, Name: o.Name, Size: o.Size, SHA256: o.SHA256, Node: o.Node, Attempt: o.Attempt, Created: o.CreatedAt,
		Holders: []Holder{}}
	for _, h := range o.Holders {
		v.Holders = append(v.Holders, Holder{Node: h.Node, VerifiedAt: h.VerifiedAt, LostAt: h.LostAt})
	}
	return v
}

// UserFrom converts a stored user.
func UserFrom(u store.User) User {
	return User{Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// TokenFrom converts a stored token.
func TokenFrom(t store.Token) Token {
	return Token{Name: t.Name, Role: t.Role, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt}
}
