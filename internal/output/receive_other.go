//go:build !linux

package output

import "os"

// startDirect leaves f as it is: direct I/O is used on Linux only.
func startDirect(f *os.File) *fileWriter { return &fileWriter{f: f} }

func stopDirect(*os.File) error { return nil }

func refusedDirect(error) bool { return false }
