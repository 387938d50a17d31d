package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// A peer is River's own benchmark (`river bench`, riverqueue/river's CLI, built elsewhere
// and named by -peer-river), run on the same PostgreSQL server in the same invocation,
// each of its repetitions right after one of tandem's, so that both meet the same machine.
// River's modes match tandem's: backlog is `river bench -n N` (N jobs inserted, then
// worked down); sustained is `river bench --duration D` (jobs inserted continuously while
// they are worked). Its figure is the one River prints: jobs worked ÷ the time from its
// client's start to the last job worked.

// peer runs River's benchmark.
type peer struct {
	bin      string        // the river binary
	duration time.Duration // of a sustained repetition
}

// peerResult is one repetition of River's benchmark.
type peerResult struct {
	rate   float64 // jobs/s as River reports it
	jobs   int64   // jobs worked
	pgCPU  float64 // cores the PostgreSQL server used on average (-1: unknown)
	perJob float64 // µs of PostgreSQL CPU per job worked (-1: unknown)
}

// riverSummary is River's last line: "bench: total jobs worked [ N ], total jobs inserted
// [ M ], overall job/sec [ X ], running D".
var riverSummary = regexp.MustCompile(`total jobs worked \[\s*(\d+)\s*\].*overall job/sec \[\s*([0-9.]+)\s*\]`)

// repetition runs River's benchmark once on a fresh database of repo's server.
func (p *peer) repetition(ctx context.Context, repo *repos, s settings) (peerResult, error) {
	db, drop, err := repo.create(ctx, "")
	if err != nil {
		return peerResult{}, err
	}
	defer drop()
	if out, err := exec.CommandContext(ctx, p.bin, "migrate-up", "--database-url", db).CombinedOutput(); err != nil {
		return peerResult{}, fmt.Errorf("river migrate-up: %w: %s", err, bytes.TrimSpace(out))
	}
	args := []string{"bench", "--database-url", db}
	if s.mode == "backlog" {
		args = append(args, "--num-total-jobs", strconv.Itoa(s.n))
	} else {
		args = append(args, "--duration", p.duration.String())
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	pg0, wall0 := repo.serverCPU(), time.Now()
	err = cmd.Run()
	wall := time.Since(wall0).Seconds()
	pg := repo.serverCPU()
	if err != nil {
		return peerResult{}, fmt.Errorf("river %v: %w: %s", args[:1], err, lastLines(out.Bytes(), 5))
	}
	m := riverSummary.FindAllSubmatch(out.Bytes(), -1)
	if len(m) == 0 {
		return peerResult{}, fmt.Errorf("river bench printed no summary: %s", lastLines(out.Bytes(), 5))
	}
	last := m[len(m)-1]
	r := peerResult{pgCPU: -1, perJob: -1}
	r.jobs, _ = strconv.ParseInt(string(last[1]), 10, 64)
	r.rate, _ = strconv.ParseFloat(string(last[2]), 64)
	if pg0 >= 0 && pg >= 0 {
		r.pgCPU = (pg - pg0).Seconds() / wall
		if r.jobs > 0 {
			r.perJob = float64((pg - pg0).Microseconds()) / float64(r.jobs)
		}
	}
	return r, nil
}

func lastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return string(bytes.Join(lines[max(len(lines)-n, 0):], []byte(" | ")))
}

// checkPeer makes sure the river binary runs.
func checkPeer(bin string) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("-peer-river: %w", err)
	}
	if out, err := exec.Command(bin, "bench", "--help").CombinedOutput(); err != nil {
		return fmt.Errorf("-peer-river: %s bench --help: %w: %s", bin, err, lastLines(out, 3))
	}
	return nil
}
