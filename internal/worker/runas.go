package worker

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// RunAs is the Unix user a command runs as.
type RunAs struct {
	Name     string
	Uid, Gid uint32
	Home     string // the command's HOME
}

// LookupRunAs finds a user by name.
func LookupRunAs(name string) (*RunAs, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("run_as %q: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("run_as %q: uid %s, gid %s are not numbers", name, u.Uid, u.Gid)
	}
	return &RunAs{Name: name, Uid: uint32(uid), Gid: uint32(gid), Home: u.HomeDir}, nil
}

// runAsFor is the user a job's command runs as: the job's own run_as, which the server
// must allow (run_as_allowed), else the server's run_as; nil for the server's own user.
func (w *Worker) runAsFor(jobUser string) (*RunAs, error) {
	name := w.p.RunAs
	if jobUser != "" {
		if !slices.Contains(w.p.RunAsAllowed, jobUser) {
			return nil, fmt.Errorf("command.run_as %q: this server does not allow it (run_as_allowed: %v)", jobUser, w.p.RunAsAllowed)
		}
		name = jobUser
	}
	if name == "" {
		return nil, nil
	}
	return LookupRunAs(name)
}

// OpenOutputDir lets u write into an attempt's output directory: the directories from
// dataDir down to it may be passed through (0711: not listed), and the directory is u's.
func OpenOutputDir(dataDir, dir string, u *RunAs) error {
	for d := filepath.Dir(dir); len(d) >= len(dataDir); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			return fmt.Errorf("output directory for run_as %s: %w", u.Name, err)
		}
		if d == dataDir || d == filepath.Dir(d) {
			break
		}
	}
	if err := os.Chown(dir, int(u.Uid), int(u.Gid)); err != nil {
		return fmt.Errorf("output directory for run_as %s: %w", u.Name, err)
	}
	return nil
}

// ReclaimOutputDir gives an attempt's output directory and everything in it back to
// this process's user, so the job's user cannot change its outputs once recorded.
func ReclaimOutputDir(dir string) error {
	uid, gid := os.Getuid(), os.Getgid()
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// credential makes cmd run as u (no supplementary groups).
func credential(attr *syscall.SysProcAttr, u *RunAs) {
	if u != nil {
		attr.Credential = &syscall.Credential{Uid: u.Uid, Gid: u.Gid, Groups: []uint32{}}
	}
}
