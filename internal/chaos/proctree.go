package chaos

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// withoutEnv returns env without the variable key.
func withoutEnv(env []string, key string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
}

// signalName is the conventional name of the signals the harness sends.
func signalName(sig syscall.Signal) string {
	names := map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGSTOP: "SIGSTOP", syscall.SIGCONT: "SIGCONT",
		syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGHUP: "SIGHUP"}
	if name, ok := names[sig]; ok {
		return name
	}
	return sig.String()
}

// killTree SIGKILLs pid and all its descendants. Descendants are found through their
// parent pids, which a kill would reset (orphans move to init), so the whole tree is
// frozen first, level by level, until no new process appears; then all are killed.
func killTree(pid int) {
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	tree := map[int]bool{pid: true}
	for {
		grew := false
		for _, d := range descendants(pid) {
			if !tree[d] {
				tree[d] = true
				grew = true
				_ = syscall.Kill(d, syscall.SIGSTOP)
			}
		}
		if !grew {
			break
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for d := range tree {
		if d != pid {
			_ = syscall.Kill(d, syscall.SIGKILL)
			// A stopped process is killed by SIGKILL too; SIGCONT does no harm and makes
			// sure of it on kernels that deliver it only once the process runs.
			_ = syscall.Kill(d, syscall.SIGCONT)
		}
	}
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid …"; comm may hold spaces and parentheses.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, k := range children[p] {
			out = append(out, k)
			queue = append(queue, k)
		}
	}
	return out
}
