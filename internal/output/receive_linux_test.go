package output

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestReceiveBypassesPageCache checks that a received copy's whole blocks are not left
// in the page cache, where the file system supports direct I/O.
func TestReceiveBypassesPageCache(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "f")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, FileMode)
	if err != nil {
		t.Fatal(err)
	}
	if startDirect(f).align == 0 {
		f.Close()
		t.Skip("the file system of the test's temporary directory has no direct I/O")
	}
	const size = 4*chunkSize + 100
	if err := stopDirect(f); err != nil {
		t.Fatal(err)
	}
	if _, err := receive(f, bytes.NewReader(bytes.Repeat([]byte("x"), size)), sha256.New()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m, err := unix.Mmap(int(r.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	pages := (size + os.Getpagesize() - 1) / os.Getpagesize()
	vec := make([]byte, pages)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	cached := 0
	for _, v := range vec {
		cached += int(v & 1)
	}
	if cached > 1 { // the tail went through the cache
		t.Fatalf("%d of the file's %d pages are in the page cache after it was received", cached, pages)
	}
}
