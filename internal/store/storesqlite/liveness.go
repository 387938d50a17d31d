package storesqlite

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// livenessDir holds one lock file per live tandem process sharing this repository.
func (s *Store) livenessDir() string { return s.path + ".liveness" }

func (s *Store) livenessFile(holder string) string {
	return filepath.Join(s.livenessDir(), hex.EncodeToString([]byte(holder))+".lock")
}

// LivenessHold implements store.Liveness with an exclusive file lock, which the kernel
// frees the instant the process dies.
func (s *Store) LivenessHold(_ context.Context, holder string) (func(), error) {
	if err := os.MkdirAll(s.livenessDir(), 0o755); err != nil {
		return nil, fmt.Errorf("hold liveness lock: %w", err)
	}
	path := s.livenessFile(holder)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("hold liveness lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("hold liveness lock of %s: %w", holder, err)
	}
	return func() {
		os.Remove(path)
		f.Close() // closing unlocks
	}, nil
}

// LivenessDead implements store.Liveness: holder's lock file is missing or unlocked.
func (s *Store) LivenessDead(_ context.Context, holder string) (bool, error) {
	path := s.livenessFile(holder)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("check liveness of %s: %w", holder, err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check liveness of %s: %w", holder, err)
	}
	os.Remove(path) // the dead process's file; closing f unlocks
	return true, nil
}
