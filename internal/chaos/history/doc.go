// Package history owns the chaos soak's history checker: the rules a cluster's recorded
// history must keep, judged by Check (one job's runs against its execution log, the
// primary epochs, the scheduler slots' terms, the faults injected, deliveries, outputs
// and notifications) and CheckSync (a DR site's applied changes against its source's
// change log), and the types of what they judge, with the parsers of that data (an
// execution log's lines, the events that say when epochs and slot terms began).
//
// It is pure: it judges a history it is given and gathers none. It starts no process,
// opens no file and talks to no network (TestImports keeps it so); internal/chaos runs
// the cluster, collects the history and calls it, and tests build histories by hand.
// Every broken rule is a Violation named by its Rule; a Report lists them with the runs
// around each.
package history
