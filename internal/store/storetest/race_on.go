//go:build race

package storetest

// raceEnabled: under the race detector the SQLite engine (C translated to Go) is some
// twenty times slower, so the plan test builds a smaller table.
const raceEnabled = true
