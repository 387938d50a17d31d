// Package storetest is the conformance suite every store.Store engine must pass: the same
// tests, the same expectations, whatever the engine. An engine's test calls Run with a
// function that returns a fresh, empty, migrated store for each test.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// Open returns a fresh, empty store for one test; the engine closes it in t.Cleanup.
type Open func(t *testing.T) store.Store

// Capability is an optional interface an engine implements beyond store.Store. An engine
// declares the ones it has; the suite fails when a declared one is missing (a fast path
// that silently went away is a failure, not a skip). Every engine must implement
// store.Liveness and explain its batch plans: those are not optional.
type Capability string

// The optional capabilities.
const (
	Notifier Capability = "notifier" // store.Notifier: pushed wake-ups between nodes
	Analyzer Capability = "analyzer" // store.Analyzer: the primary refreshes statistics
)

// Run runs every conformance test against the engine, which declares its optional
// capabilities.
func Run(t *testing.T, open Open, caps ...Capability) {
	t.Run("Capabilities", func(t *testing.T) { testCapabilities(t, open(t), caps) })
	tests := map[string]func(*testing.T, store.Store){
		"JobApplyCreateUpdate":         testJobApplyCreateUpdate,
		"JobApplyAllOrNothing":         testJobApplyAllOrNothing,
		"JobApplyMany":                 testJobApplyMany,
		"JobDeleteAndPause":            testJobDeleteAndPause,
		"ScheduleInitOnce":             testScheduleInitOnce,
		"ScheduleInitMany":             testScheduleInitMany,
		"ScheduleListDue":              testScheduleListDue,
		"ScheduleListNew":              testScheduleListNew,
		"FireExactlyOnce":              testFireExactlyOnce,
		"FireConcurrentSchedulers":     testFireConcurrent,
		"FireRecords":                  testFireRecords,
		"FireBatch":                    testFireBatch,
		"FireFenced":                   testFireFenced,
		"OverlapPolicies":              testOverlapPolicies,
		"RunLifecycle":                 testRunLifecycle,
		"RunRetry":                     testRunRetry,
		"RunCancel":                    testRunCancel,
		"RunListFilters":               testRunListFilters,
		"RunCreateBatch":               testRunCreateBatch,
		"RunCreateIdempotent":          testRunCreateIdempotent,
		"RunStartBatch":                testRunStartBatch,
		"RunFinishBatch":               testRunFinishBatch,
		"RunBatchPlans":                testRunBatchPlans,
		"RunAssignStart":               testRunAssignStart,
		"RunListDispatchablePages":     testRunListDispatchablePages,
		"DispatchQueueOverlap":         testDispatchQueueOverlap,
		"OutputsExpire":                testOutputsExpire,
		"OutputCopies":                 testOutputCopies,
		"OutputsOfALostNode":           testOutputsOfALostNode,
		"Lease":                        testLease,
		"LeaseAcquireEvent":            testLeaseAcquireEvent,
		"NodesAndEvents":               testNodesAndEvents,
		"ClusterRead":                  testClusterRead,
		"NodeLose":                     testNodeLose,
		"NodeLoseDead":                 testNodeLoseDead,
		"NodeClaim":                    testNodeClaim,
		"Holds":                        testHolds,
		"HoldEvents":                   testHoldEvents,
		"SettingsAndWeight":            testSettingsAndWeight,
		"SchedulerSlots":               testSchedulerSlots,
		"RunRelease":                   testRunRelease,
		"DeposedPrimaryChangesNothing": testDeposedPrimaryChangesNothing,
		"LeaseHandover":                testLeaseHandover,
		"Liveness":                     testLiveness,
		"LeaseRepositoryClock":         testLeaseRepositoryClock,
		"TimesAreUTCInstants":          testTimes,
		"DeliveriesCreatedWithResult":  testDeliveriesCreatedWithTheResult,
		"DeliveryClaims":               testDeliveryClaims,
		"DeliveryNodeLost":             testDeliveryNodeLost,
		"Auth":                         testAuth,
		"Secrets":                      testSecrets,
		"Rules":                        testRules,
		"NotifyAdvance":                testNotifyAdvance,
		"RunEvents":                    testRunEvents,
		"EventsFollowable":             testEventsFollowable,
		"ChangeLog":                    testChangeLog,
		"ChangeLogConcurrent":          testChangeLogConcurrent,
		"SyncSource":                   testSyncSource,
		"NodeClaimEvent":               testNodeClaimEvent,
		"NodeHeartbeatEvent":           testNodeHeartbeatEvent,
		"SettingEvent":                 testSettingEvent,
		"LeaseResignEvent":             testLeaseResignEvent,
		"SlotTakenEvent":               testSlotTakenEvent,
		"SyncSourceEvents":             testSyncSourceEvents,
		"NodeLoseEvents":               testNodeLoseEvents,
		"AssignRacesLose":              testAssignRacesLose,
	}
	// Tests of two repositories (a sync source and its target).
	pairs := map[string]func(*testing.T, Open){
		"SyncTarget":             testSyncTarget,
		"SyncReplaceAllOrNone":   testSyncReplaceAllOrNone,
		"ChangeLogAuth":          testChangeLogAuth,
		"SyncSecretsAndOwnItems": testSyncSecretsAndOwnItems,
	}
	for name, fn := range pairs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, open)
		})
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, open(t))
		})
	}
}

func testCapabilities(t *testing.T, s store.Store, caps []Capability) {
	if _, ok := s.(store.Liveness); !ok {
		t.Errorf("%T does not implement store.Liveness (every engine must)", s)
	}
	if _, ok := s.(planner); !ok {
		t.Errorf("%T does not explain its batch plans (every engine must)", s)
	}
	for _, c := range caps {
		var ok bool
		switch c {
		case Notifier:
			_, ok = s.(store.Notifier)
		case Analyzer:
			_, ok = s.(store.Analyzer)
		default:
			t.Errorf("unknown capability %q", c)
			continue
		}
		if !ok {
			t.Errorf("%T declares %s but does not implement it", s, c)
		}
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func spec(name string, exprs ...string) job.Spec {
	return job.Spec{Name: name, Schedule: exprs, Timezone: "UTC", Misfire: job.MisfireRunOnce,
		Overlap: job.OverlapAllow, Command: &job.Command{Argv: []string{"true"}}}
}

func def(s job.Spec) store.JobDef {
	d := store.JobDef{Spec: s}
	for _, e := range s.Schedule {
		d.Schedules = append(d.Schedules, store.ScheduleSpec{Key: e + "|UTC", Expr: e})
	}
	return d
}

func apply(t *testing.T, s store.Store, specs ...job.Spec) []store.JobApplyResult {
	t.Helper()
	p := store.JobApplyParams{Now: t0}
	for _, sp := range specs {
		p.Jobs = append(p.Jobs, def(sp))
	}
	res, err := s.JobApply(ctx(t), p)
	if err != nil {
		t.Fatalf("JobApply: %v", err)
	}
	return res
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// initAt sets the next fire time of every schedule of the job and returns the schedules.
func initAt(t *testing.T, s store.Store, name string, at time.Time) []store.Schedule {
	t.Helper()
	j := must[store.Job](t)(s.JobGet(ctx(t), name))
	for _, sc := range j.Schedules {
		if ok := must[[]bool](t)(s.ScheduleInit(ctx(t), initOne(sc.ID, &at))); !ok[0] {
			t.Fatalf("ScheduleInit %d: not applied", sc.ID)
		}
	}
	return must[store.Job](t)(s.JobGet(ctx(t), name)).Schedules
}

func ptr[T any](v T) *T { return &v }

func fire(t *testing.T, s store.Store, epoch int64, sc store.Schedule, at ...time.Time) store.FireResult {
	t.Helper()
	next := at[len(at)-1].Add(time.Minute)
	res, err := s.OccurrenceFire(ctx(t), store.OccurrenceFireParams{Epoch: epoch, Now: at[len(at)-1],
		Items: []store.FireItem{{ScheduleID: sc.ID, Expected: *sc.NextFireAt, Next: &next, Fire: at}}})
	if err != nil {
		t.Fatalf("OccurrenceFire: %v", err)
	}
	return res[0]
}

func countRuns(t *testing.T, s store.Store, jobName string) int {
	t.Helper()
	return len(must[[]store.Run](t)(s.RunList(ctx(t), store.RunListParams{Job: jobName, Limit: 10000})))
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func testConcurrently(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i)
		}()
	}
	wg.Wait()
}

func name(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }

func initOne(id int64, at *time.Time) store.ScheduleInitParams {
	return store.ScheduleInitParams{Items: []store.ScheduleInitItem{{ID: id, NextFireAt: at}}}
}
