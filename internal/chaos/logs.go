package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// LogLine is one line a node's process wrote (stderr or stdout).
type LogLine struct {
	Seq         int    // position in the cluster's log, from 0
	Node        string // node id
	Incarnation int    // which process of the node: 1, then 2 after a restart, …
	// At is the line's own "time" for JSON log lines (the node's clock, which is the
	// harness's clock too: one host), else when the harness read it.
	At    time.Time
	Level string // JSON "level", if any
	Msg   string // JSON "msg", else the whole line
	Raw   string
}

// String is the line as the node wrote it, prefixed with node and incarnation.
func (l LogLine) String() string { return fmt.Sprintf("%s#%d %s", l.Node, l.Incarnation, l.Raw) }

// faultPatterns mark lines after which a process cannot be trusted: the race detector's
// report, a panic, a fatal runtime error.
var faultPatterns = []string{"WARNING: DATA RACE", "panic: ", "fatal error: "}

// servingLine is what `tandem server` prints once it serves.
var servingLine = regexp.MustCompile(`serving on (http://\S+)`)

// logBook keeps the lines of all processes of a cluster and wakes waiters on each new one.
type logBook struct {
	mu      sync.Mutex
	lines   []LogLine
	changed chan struct{} // closed and replaced on every new line
}

func newLogBook() *logBook { return &logBook{changed: make(chan struct{})} }

func (b *logBook) add(l LogLine) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l.Seq = len(b.lines)
	b.lines = append(b.lines, l)
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *logBook) all() []LogLine {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.lines)
}

func (b *logBook) mark() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.lines)
}

func (b *logBook) faults() []LogLine {
	var out []LogLine
	for _, l := range b.all() {
		for _, p := range faultPatterns {
			if strings.Contains(l.Raw, p) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// since returns the lines from position from on, and a channel closed on the next line.
func (b *logBook) since(from int) ([]LogLine, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if from > len(b.lines) {
		from = len(b.lines)
	}
	return slices.Clone(b.lines[from:]), b.changed
}

// LogMatch selects log lines: Node ("" any), and Msg must match Pattern.
type LogMatch struct {
	Node    string
	Pattern *regexp.Regexp
}

// WaitLog waits for a line matching m from log position since (see Mark) on, and
// returns it. The pattern is matched against the line's message (Msg).
func (c *Cluster) WaitLog(ctx context.Context, since int, m LogMatch) (LogLine, error) {
	for {
		lines, changed := c.logs.since(since)
		for _, l := range lines {
			if (m.Node == "" || l.Node == m.Node) && m.Pattern.MatchString(l.Msg) {
				return l, nil
			}
		}
		since += len(lines)
		select {
		case <-ctx.Done():
			who := "any node"
			if m.Node != "" {
				who = "node " + m.Node
			}
			return LogLine{}, fmt.Errorf("wait for log line %q of %s: %w", m.Pattern, who, ctx.Err())
		case <-changed:
		}
	}
}

// FindLogs returns the lines from position since on that match m.
func (c *Cluster) FindLogs(since int, m LogMatch) []LogLine {
	lines, _ := c.logs.since(since)
	var out []LogLine
	for _, l := range lines {
		if (m.Node == "" || l.Node == m.Node) && m.Pattern.MatchString(l.Msg) {
			out = append(out, l)
		}
	}
	return out
}

// lineWriter splits a process's output into lines and records them.
type lineWriter struct {
	book        *logBook
	node        string
	incarnation int
	serving     chan<- string // gets the address from the serving line, once

	mu  sync.Mutex
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// flush records an unterminated last line (a process killed mid-write).
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

func (w *lineWriter) line(raw string) {
	l := LogLine{Node: w.node, Incarnation: w.incarnation, At: time.Now(), Msg: raw, Raw: raw}
	var j struct {
		Time  time.Time `json:"time"`
		Level string    `json:"level"`
		Msg   string    `json:"msg"`
	}
	if strings.HasPrefix(raw, "{") && json.Unmarshal([]byte(raw), &j) == nil {
		l.Msg, l.Level = j.Msg, j.Level
		if !j.Time.IsZero() {
			l.At = j.Time
		}
	}
	if w.serving != nil {
		if m := servingLine.FindStringSubmatch(raw); m != nil {
			w.serving <- m[1]
			w.serving = nil
		}
	}
	w.book.add(l)
}
