package logredact

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

type addr struct{ u string }

func (a addr) String() string { return a.u }

// Every place a line carries text is redacted: the message, string, error, Stringer and
// other attributes, groups, and attributes and groups added to the logger; for both
// formats. What holds nothing to hide is written as it was.
func TestEveryPartOfALineIsRedacted(t *testing.T) {
	t.Parallel()
	const pw, cluster = "db-Pa55word", "cluster-secret-0123456789"
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			var h slog.Handler = slog.NewTextHandler(&b, nil)
			if format == "json" {
				h = slog.NewJSONHandler(&b, nil)
			}
			log := slog.New(New(h, pw, cluster, "ab")).With("db", "postgres://u:"+pw+"@db/x").WithGroup("g")
			log.Info("calling https://hook.example/x?token=tok-1234 for run 5",
				"err", fmt.Errorf("post http://bob:hunter22@h.example/?k=v: %w", errors.New("refused")),
				"peer", addr{"https://n2/api?sig=deadbeef"},
				"list", []string{"ok", cluster},
				"n", 42, "plain", "nothing to hide: ab",
				slog.Group("inner", "url", "http://x/?q=secretq"))
			out := b.String()
			for _, v := range []string{pw, cluster, "tok-1234", "hunter22", "deadbeef", "secretq", "k=v"} {
				if strings.Contains(out, v) {
					t.Errorf("%q shows in %s", v, out)
				}
			}
			for _, want := range []string{"token=***", "bob:***@h.example", "sig=***", Hidden, "42", "nothing to hide: ab", "u:***@db"} {
				if !strings.Contains(out, want) {
					t.Errorf("%q missing from %s", want, out)
				}
			}
		})
	}
}

// A value hidden later is hidden by every logger derived before or after, longest
// values first so that one inside another is not half shown.
func TestHideReachesDerivedLoggers(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	red := New(slog.NewTextHandler(&b, nil))
	early := slog.New(red).With("component", "worker")
	red.Hide("abcd")
	red.Hide("xxabcdyy")
	red.Hide("ab") // too short to hide: ordinary text
	early.Info("value xxabcdyy and abcd", "attr", "abcd")
	slog.New(red).WithGroup("g").Info("later", "v", "abcd")
	out := b.String()
	if strings.Contains(out, "abcd") || strings.Count(out, Hidden) != 4 || strings.Contains(out, "xx"+Hidden) {
		t.Fatalf("hidden values show:\n%s", out)
	}
}
