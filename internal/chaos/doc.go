// Package chaos owns tandem's process-level fault injection: it starts real `tandem
// server` processes over one repository (a SQLite file shared by the processes of one
// host, or a PostgreSQL database), signals them the way operators and crashes do
// (SIGKILL of a node's whole process tree, SIGSTOP/SIGCONT, SIGTERM), restarts them under
// the same node id, captures every log line they write, and waits for cluster conditions
// with deadlines. It also owns the independent execution log that test jobs append to,
// and the history checker that judges a schedule's runs against it: no scheduled time
// twice, none lost, every run final, no attempt executed twice, no stale primary's write.
//
// The failover tests of this package and bench/failover are built on it. Nothing here is
// used by a running tandem node.
//
// A cluster is driven from outside, like an operator would: through the REST API (the Go
// client) and the tandem CLI, never through the repository. Each Cluster keeps its own
// directory: one data directory per node, the SQLite file when that is the engine, and
// one execution log per job.
package chaos
