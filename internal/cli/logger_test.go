package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/config"
)

// The server's logger redacts every line: URL passwords and query values, the server's
// own credentials (SMTP password, cluster secret, the repository's password) and the
// secret values it is told of, wherever they appear; an SMTP password that refers to a secret is not itself a value.
func TestServerLoggerRedacts(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var b strings.Builder
		c := config.Config{DB: "postgres://tandem:pg-Pa55w0rd@db:5432/tandem", ClusterSecret: "cluster-0123456789abcdef"}
		c.SMTP.Password = "smtp-hunter2"
		c.Log.Level, c.Log.Format = "info", format
		log, red := newLogger(c, &b)
		log = log.With("component", "test")
		red.Hide("decrypted-secret-value") // as the node does when it decrypts a secret
		log.Info("dial postgres://tandem:pg-Pa55w0rd@db:5432/tandem failed", "err", errors.New("password pg-Pa55w0rd refused"))
		log.Warn("smtp", "reply", "535 bad password smtp-hunter2", "peer", "sig cluster-0123456789abcdef")
		log.Error("webhook", "err", fmt.Errorf("post https://h.example/x?token=abc123&x=1: %w", context.DeadlineExceeded))
		log.Info("a job printed decrypted-secret-value")
		out := b.String()
		for _, v := range []string{"pg-Pa55w0rd", "smtp-hunter2", "cluster-0123456789abcdef", "abc123", "decrypted-secret-value"} {
			if strings.Contains(out, v) {
				t.Errorf("%s: %q shows in\n%s", format, v, out)
			}
		}
		if !strings.Contains(out, "token=***") || !strings.Contains(out, "tandem:***@db") {
			t.Errorf("%s: URLs not redacted as they should be:\n%s", format, out)
		}
	}
	ref := config.Config{}
	ref.SMTP.Password = `{{secret "SMTP"}}`
	if v := credentials(ref); len(v) != 1 || v[0] != "" {
		t.Errorf("a reference counted as a credential: %q", v)
	}
}
