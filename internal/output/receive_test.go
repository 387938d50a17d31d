package output

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

func TestReceiveWritesEveryByte(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := make([]byte, 3*chunkSize+12345)
	for i := range data {
		data[i] = byte(i*7 + i/4096)
	}
	for _, size := range []int{0, 1, 4095, 4096, 4097, chunkSize - 1, chunkSize, chunkSize + 1, len(data)} {
		want := data[:size]
		f, err := os.OpenFile(filepath.Join(dir, "f"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, FileMode)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		// A socket gives a few kilobytes per read: HalfReader gives odd pieces.
		n, err := receive(f, iotest.HalfReader(bytes.NewReader(want)), h)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil || n != int64(size) {
			t.Fatalf("size %d: receive = %d, %v", size, n, err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d: the file has %d bytes, not what was sent", size, len(got))
		}
		if sum := sha256.Sum256(want); !bytes.Equal(h.Sum(nil), sum[:]) {
			t.Fatalf("size %d: the hash was not given every byte", size)
		}
	}
}

func TestReceiveReportsErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	broken := errors.New("connection reset")
	if _, err := receive(f, iotest.ErrReader(broken), sha256.New()); !errors.Is(err, broken) {
		t.Fatalf("a failed read: %v", err)
	}
	ro, err := os.Open(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := receive(ro, bytes.NewReader(make([]byte, 10)), sha256.New()); err == nil {
		t.Fatal("a failed write was not reported")
	}
}
