// Package chaos owns tandem's process-level fault injection: it starts real `tandem
// server` processes over one repository (a SQLite file shared by the processes of one
// host, or a PostgreSQL database), signals them the way operators and crashes do
// (SIGKILL of a node's whole process tree, SIGSTOP/SIGCONT, SIGTERM), restarts them under
// the same node id, captures every log line they write, and waits for cluster conditions
// with deadlines. It also owns the independent execution log that test jobs append to
// (ExecScript), and gathers from a cluster the history that the pure package
// internal/chaos/history judges against it: no scheduled time twice, none lost, every
// run final, no attempt executed twice, no stale primary's write, and with scheduler
// slots each schedule's times fired once across its slot's holders, none by a deposed
// holder.
//
// Soak runs the fault-injection soak: three nodes, every node's peer traffic (and on
// PostgreSQL its database traffic) through a fault-injecting Proxy, a workload of
// schedules under every misfire and overlap policy plus on-demand runs, and faults from
// a seeded schedule (kill -9, SIGTERM, SIGSTOP around the lease TTL, a wall clock
// minutes off, node–node and node–database partitions, resets and latency, PostgreSQL
// restarts), each healed before the next; then history.Check judges every job.
// The seed is printed first, and the same seed replays the same schedule of faults.
// With SoakOptions.Slots the nodes share the firing in scheduler slots (TestSoakSlots).
//
// The failover tests of this package, its soak test and bench/failover are built on it.
// Nothing here is used by a running tandem node.
//
// A cluster is driven from outside, like an operator would: through the REST API (the Go
// client) and the tandem CLI, never through the repository. Each Cluster keeps its own
// directory: one data directory per node, the SQLite file when that is the engine, and
// one execution log per job.
package chaos
