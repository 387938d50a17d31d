package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverCPU is the CPU time used so far by the PostgreSQL server this bench started (its
// postmaster, the backends alive now and those that ended), or -1 when there is none to
// measure.
func (r *repos) serverCPU() time.Duration {
	if r.srv == nil {
		return -1
	}
	procs, err := procStats()
	if err != nil {
		return -1
	}
	self := os.Getpid()
	var total time.Duration
	found := false
	for _, p := range procs {
		if p.ppid == self && p.comm == "postgres" {
			found = true
			total += p.cpu
			for _, c := range procs {
				if c.ppid == p.pid {
					total += c.cpu
				}
			}
		}
	}
	if !found {
		return -1
	}
	return total
}

type procStat struct {
	pid, ppid int
	comm      string
	cpu       time.Duration // user and system
}

// procStats reads /proc/*/stat (Linux).
func procStats() ([]procStat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid … utime stime are fields 14 and 15; comm may hold spaces.
		line := string(b)
		open, close := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(line[close+1:])
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		// Fields 16 and 17 are the children's that ended and were waited for: the
		// postmaster's hold the backends of connections closed since.
		var ticks int64
		for _, k := range []int{11, 12, 13, 14} {
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
		out = append(out, procStat{pid: pid, ppid: ppid, comm: line[open+1 : close], cpu: time.Duration(ticks) * time.Second / clockTicks})
	}
	return out, nil
}

// clockTicks is USER_HZ, the unit of /proc/*/stat times: 100 on every Linux port tandem
// builds for.
const clockTicks = 100

// cpuTime is the CPU time this process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
