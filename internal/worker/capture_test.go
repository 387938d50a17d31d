package worker

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestCaptureKeepsHead(t *testing.T) {
	t.Parallel()
	c := newCapture(10)
	for _, chunk := range []string{"0123", "4567", "89ab", "cdef"} {
		if n, err := c.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; want %d, nil", chunk, n, err, len(chunk))
		}
	}
	got, truncated := c.bytes()
	if string(got) != "0123456789" || !truncated {
		t.Errorf("got %q truncated %v, want %q truncated", got, truncated, "0123456789")
	}
	if cap(got) > 10 {
		t.Errorf("capacity %d grew past the limit", cap(got))
	}
}

func TestCaptureExactlyAtLimit(t *testing.T) {
	t.Parallel()
	c := newCapture(4)
	c.Write([]byte("abcd"))
	if got, truncated := c.bytes(); string(got) != "abcd" || truncated {
		t.Errorf("got %q truncated %v, want %q not truncated", got, truncated, "abcd")
	}
	c.Write(nil)
	if _, truncated := c.bytes(); truncated {
		t.Error("an empty write truncated")
	}
	c.Write([]byte("e"))
	if got, truncated := c.bytes(); !bytes.Equal(got, []byte("abcd")) || !truncated {
		t.Errorf("got %q truncated %v after overflow", got, truncated)
	}
}

func TestCollectOutputs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"a.txt":           "alpha",
		"a/b.csv":         "x,y\n1,2\n",
		"sub/deep/z.json": "{}",
		"empty":           "",
	}
	for name, body := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Neither a symlink (even to a regular file) nor a directory link may be listed.
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(dir, "dirlink")); err != nil {
		t.Fatal(err)
	}

	got, err := CollectOutputs(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []OutputFile{
		{"a.txt", 5, sha256Hex([]byte("alpha"))},
		{"a/b.csv", 8, sha256Hex([]byte("x,y\n1,2\n"))},
		{"empty", 0, sha256Hex(nil)},
		{"sub/deep/z.json", 2, sha256Hex([]byte("{}"))},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("CollectOutputs:\n got %v\nwant %v", got, want)
	}

	if got, err := CollectOutputs(t.TempDir()); err != nil || len(got) != 0 {
		t.Errorf("empty dir: got %v, %v", got, err)
	}
	if _, err := CollectOutputs(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing dir: no error")
	}
}
