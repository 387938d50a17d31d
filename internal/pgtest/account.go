package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// serverUser is the dedicated account the server runs as when the tests
	// run as root; fallbackUser is used if it cannot be created.
	serverUser   = "tandem-pg"
	fallbackUser = "nobody"

	// dirPrefix names every server directory, so stale ones can be found.
	dirPrefix = "tandem-pgtest-"
	// staleAge is how old a server directory must be before a later run
	// removes it: far longer than any test binary runs.
	staleAge = 24 * time.Hour
)

// account is who initdb and postgres run as.
type account struct {
	name string
	cred *syscall.Credential // nil: as ourselves
}

var (
	accountOnce sync.Once
	accountVal  *account
	accountErr  error

	sweepOnce sync.Once
)

// serverAccount returns the account to run the server as, once per process.
// postgres refuses to run as root, so as root that is an unprivileged user; as
// anyone else it is that user.
func serverAccount() (*account, error) {
	accountOnce.Do(func() { accountVal, accountErr = lookupAccount() })
	return accountVal, accountErr
}

func lookupAccount() (*account, error) {
	if os.Geteuid() != 0 {
		name := strconv.Itoa(os.Geteuid())
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		return &account{name: name}, nil
	}
	// A dedicated system user rather than nobody: nobody may own other
	// things on the machine, and in user namespaces 65534 is often the
	// unmapped overflow id, while a system uid is normally mapped.
	u, err := ensureUser(serverUser)
	if err != nil {
		var fbErr error
		if u, fbErr = user.Lookup(fallbackUser); fbErr != nil {
			return nil, fmt.Errorf("find unprivileged user for postgres: %w", errors.Join(err, fbErr))
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid of %s: %w", u.Username, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid of %s: %w", u.Username, err)
	}
	return &account{
		name: u.Username,
		// Groups is empty, not nil, so that root's supplementary groups are
		// dropped too.
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
	}, nil
}

// ensureUser looks up the named user, creating it as a system user without a
// home directory if it does not exist. Parallel test binaries (go test runs
// packages concurrently) race to create it; useradd then fails because the
// name is taken or /etc/passwd is locked, so each failure is followed by a
// fresh lookup and, a few times, a retry.
func ensureUser(name string) (*user.User, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if u, err := user.Lookup(name); err == nil {
			return u, nil
		}
		args := []string{"--system", "--no-create-home", "--home-dir", "/nonexistent", "--user-group"}
		// It only ever runs postgres; nobody should log in as it.
		for _, sh := range []string{"/usr/sbin/nologin", "/sbin/nologin"} {
			if _, err := os.Stat(sh); err == nil {
				args = append(args, "--shell", sh)
				break
			}
		}
		out, err := exec.Command("useradd", append(args, name)...).CombinedOutput()
		if err == nil {
			return user.Lookup(name)
		}
		lastErr = fmt.Errorf("create user %s: %w: %s", name, err, strings.TrimSpace(string(out)))
		if errors.Is(err, exec.ErrNotFound) {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	if u, err := user.Lookup(name); err == nil {
		return u, nil
	}
	return nil, lastErr
}

// tempBases are where server directories may go, in order of preference.
// /tmp is the fallback because the server user must be able to reach the
// directory and TMPDIR may be private (say, under /root).
func tempBases() []string {
	if d := os.TempDir(); d != "/tmp" {
		return []string{d, "/tmp"}
	}
	return []string{"/tmp"}
}

// tempBase picks the directory to create the server directory in. Besides
// being reachable by the server user, the path of the unix socket inside it
// must fit into sockaddr_un (107 bytes), or postgres refuses to start.
func tempBase(acct *account) (string, error) {
	const sockSuffix = "/" + dirPrefix + "4294967295/.s.PGSQL.65535"
	for _, b := range tempBases() {
		if len(b)+len(sockSuffix) >= 107 {
			continue
		}
		if acct.cred == nil || traversable(b, acct.cred.Uid, acct.cred.Gid) {
			return b, nil
		}
	}
	return "", fmt.Errorf("find temp dir for postgres: none of %v is short enough and reachable by user %s", tempBases(), acct.name)
}

// traversable reports whether the user uid (primary group gid) can reach
// entries of dir, i.e. may search dir and each of its parents.
func traversable(dir string, uid, gid uint32) bool {
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return false
		}
		perm := fi.Mode().Perm()
		if perm&0o001 == 0 && !(st.Uid == uid && perm&0o100 != 0) && !(st.Gid == gid && perm&0o010 != 0) {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// sweepStaleDirs removes server directories left by test binaries that were
// killed before they could stop their server (the server itself died with
// them). It is best effort: a directory that cannot be removed now will be
// tried again by the next run.
func sweepStaleDirs() {
	cutoff := time.Now().Add(-staleAge)
	for _, b := range tempBases() {
		matches, _ := filepath.Glob(filepath.Join(b, dirPrefix+"*"))
		for _, m := range matches {
			fi, err := os.Lstat(m)
			if err != nil || !fi.IsDir() || fi.ModTime().After(cutoff) {
				continue
			}
			os.RemoveAll(m)
		}
	}
}
