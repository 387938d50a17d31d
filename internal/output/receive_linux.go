package output

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// startDirect puts f in direct I/O mode when its file system supports it with an
// alignment chunks satisfy (statx's STATX_DIOALIGN, Linux 6.1 and later); otherwise f
// stays as it is and every write goes through the page cache.
func startDirect(f *os.File) *fileWriter {
	w := &fileWriter{f: f}
	rc, err := f.SyscallConn()
	if err != nil {
		return w
	}
	_ = rc.Control(func(fd uintptr) {
		var st unix.Statx_t
		if unix.Statx(int(fd), "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &st) != nil ||
			st.Mask&unix.STATX_DIOALIGN == 0 {
			return
		}
		mem, off := int(st.Dio_mem_align), int(st.Dio_offset_align)
		if mem == 0 || off == 0 || mem > pageSize || off > pageSize || chunkSize%off != 0 {
			return
		}
		if setDirect(fd, true) == nil {
			w.align = off
		}
	})
	return w
}

// stopDirect takes f out of direct I/O mode.
func stopDirect(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = setDirect(fd, false) }); err != nil {
		return err
	}
	return ferr
}

// setDirect turns O_DIRECT on or off for fd.
func setDirect(fd uintptr, on bool) error {
	flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		flags |= unix.O_DIRECT
	} else {
		flags &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(fd, unix.F_SETFL, flags)
	return err
}

// refusedDirect reports whether a write failed because direct I/O was refused (the file
// system changed its mind about alignment): the write is made through the cache.
func refusedDirect(err error) bool { return errors.Is(err, unix.EINVAL) }
