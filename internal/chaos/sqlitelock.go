package chaos

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/tandemhq/tandem/internal/store"
)

// IsSQLite reports whether the cluster's repository is a SQLite file.
func (c *Cluster) IsSQLite() bool {
	return !store.IsPostgresURL(c.db)
}

// HoldsSQLiteWriteLock reports whether the node's process holds the write lock of the
// cluster's SQLite file: the WAL write lock (byte 120 of the -shm file) or a write lock
// on the file itself. A process frozen while holding it blocks every other process's
// writes until it runs again (docs/failover.md, "Limits to know"); tests that freeze a
// node on SQLite look here to tell that documented limit from a failure to take over.
// Read from /proc/locks, where the kernel lists every POSIX lock with its owner's pid.
func (n *Node) HoldsSQLiteWriteLock() (bool, error) {
	if !n.l.isSQLite() {
		return false, nil
	}
	pid := n.PID()
	if pid == 0 {
		return false, fmt.Errorf("check SQLite write lock of node %s: %w", n.spec.ID, ErrNotRunning)
	}
	path := n.l.sqlitePath()
	inodes := map[uint64]int64{} // inode → the lock byte that means "writing" (-1: any)
	for suffix, off := range map[string]int64{"-shm": 120, "": -1} {
		var st syscall.Stat_t
		if err := syscall.Stat(path+suffix, &st); err == nil {
			inodes[st.Ino] = off
		}
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false, fmt.Errorf("check SQLite write lock of node %s: %w", n.spec.ID, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		// "1: POSIX  ADVISORY  WRITE 7938 fe:00:9978003 120 120"; waiters show "->"
		// after the number and hold nothing.
		f := strings.Fields(line)
		if len(f) != 8 || f[1] != "POSIX" || f[3] != "WRITE" || f[4] != strconv.Itoa(pid) {
			continue
		}
		dev := strings.Split(f[5], ":")
		ino, err := strconv.ParseUint(dev[len(dev)-1], 10, 64)
		if err != nil {
			continue
		}
		off, ok := inodes[ino]
		if !ok {
			continue
		}
		start, _ := strconv.ParseInt(f[6], 10, 64)
		end, err := strconv.ParseInt(f[7], 10, 64)
		if f[7] == "EOF" {
			end, err = 1<<62, nil
		}
		if err == nil && (off < 0 || (start <= off && off <= end)) {
			return true, nil
		}
	}
	return false, nil
}
