package logquiet

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// record logs msg at level at time at.
func record(t *testing.T, l *slog.Logger, level slog.Level, at time.Time, msg string) {
	t.Helper()
	r := slog.NewRecord(at, level, msg, 0)
	if err := l.Handler().Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

func TestRepeatsWithinTheWindowAreHeldBack(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(New(slog.NewTextHandler(&buf, nil), 5*time.Second))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 100 { // every 50ms for 5s: one line
		record(t, l, slog.LevelWarn, t0.Add(time.Duration(i)*50*time.Millisecond), "cannot read the lease")
	}
	record(t, l, slog.LevelWarn, t0.Add(5*time.Second), "cannot read the lease") // the window is over
	record(t, l, slog.LevelInfo, t0.Add(5*time.Second), "run started")
	record(t, l, slog.LevelInfo, t0.Add(5*time.Second), "run started") // info: never held back
	record(t, l, slog.LevelWarn, t0.Add(5*time.Second), "dispatch failed")
	record(t, l.With("component", "worker"), slog.LevelWarn, t0.Add(5*time.Second), "cannot read the lease")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6:\n%s", len(lines), buf.String())
	}
	if strings.Contains(lines[0], "repeats_left_out") || !strings.Contains(lines[1], "repeats_left_out=99") {
		t.Fatalf("first line %q, second %q: want the second to count 99 left out", lines[0], lines[1])
	}
	if !strings.Contains(lines[5], "component=worker") {
		t.Fatalf("another logger's line was held back: %q", lines[5])
	}
}
