package main_test

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/channel"
	"github.com/tandemhq/tandem/internal/testutil"
)

// A full scenario with secrets: set from stdin, used by a command job's env and by an
// http job's URL userinfo, query and header, resolved on the worker (the receiver gets
// them); delivered by email through an SMTP server whose password is a secret, and by a
// webhook whose signing secret, URL query and header are secrets (the receivers get
// them, and one echoes the header back in its reply); a webhook delivery that fails
// with a secret in its URL. Then no log line, API answer, CLI output, event or delivery
// attempt holds a value.
func TestSecretsNeverShow(t *testing.T) {
	dir := t.TempDir()
	const pass, tok = "s3cr3t-Pa55-xyzzy", "tok-9f8e7d6c5b4a"
	const smtpPass, hookTok = "smtp-Pa55-plugh-42", "hook-Bearer-7a6b5c4d"
	hookSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef-secret-key-32by"))
	box := newAuthMailbox(t, "reports", smtpPass)
	var hookMu sync.Mutex
	var hooks []*http.Request
	var hookBodies [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		hooks, hookBodies = append(hooks, r), append(hookBodies, b)
		hookMu.Unlock()
		// A receiver that echoes what it was sent: its reply is recorded with the attempt.
		fmt.Fprintf(w, "got Authorization %s key %s", r.Header.Get("Authorization"), r.URL.Query().Get("key"))
	}))
	defer hook.Close()
	pwFile := filepath.Join(dir, "smtp-password")
	if err := os.WriteFile(pwFile, []byte(`{{secret "SMTP_PASS"}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(box.addr)
	conf := filepath.Join(dir, "server.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[smtp]
host = %q
port = %s
from = "tandem@example.com"
tls = "none"
username = "reports"
password_file = %q

[deliver]
backoff = "1s"
`, host, port, pwFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		mu.Lock()
		got = append(got, u+":"+p, r.URL.Query().Get("key"), r.Header.Get("X-Token"))
		mu.Unlock()
	}))
	defer recv.Close()
	s := startServer(t, filepath.Join(dir, "data"), "--config", conf)
	setSecret := func(name, value string) {
		cmd := s.cli(exec.Command(binary, "secret", "set", name, "--server", s.addr))
		cmd.Stdin = strings.NewReader(value + "\n")
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "secret "+name+" set") {
			t.Fatalf("secret set: %v %s", err, out)
		}
	}
	setSecret("DB_PASS", pass)
	setSecret("TOKEN", tok)
	setSecret("SMTP_PASS", smtpPass)
	setSecret("HOOK_TOKEN", hookTok)
	setSecret("HOOK_SECRET", hookSecret)
	recvHost := strings.TrimPrefix(recv.URL, "http://")
	applyJob(t, s, dir, fmt.Sprintf(`
[[job]]
name = "cmd"
[job.command]
argv = ["sh", "-c", "echo \"pass is $PASS\"; test ${#PASS} = %d"]
env = { PASS = '{{secret "DB_PASS"}}' }

[[job]]
name = "hook"
[job.http]
method = "POST"
url = 'http://alice:{{secret "DB_PASS"}}@%s/hook?key={{secret "TOKEN"}}'
headers = { X-Token = '{{secret "TOKEN"}}' }

[[job]]
name = "down"
[job.http]
url = 'http://alice:{{secret "DB_PASS"}}@127.0.0.1:1/x?key={{secret "TOKEN"}}'

[[job]]
name = "mailed"
[job.command]
argv = ["sh", "-c", "echo report > \"$TANDEM_OUTPUT_DIR/report.txt\""]
[[job.deliver]]
email = ["leads@example.com"]
[[job.deliver]]
webhook = '%s/deliver?key={{secret "HOOK_TOKEN"}}'
secret = '{{secret "HOOK_SECRET"}}'
headers = { Authorization = 'Bearer {{secret "HOOK_TOKEN"}}' }
[[job.deliver]]
webhook = 'http://alice:{{secret "DB_PASS"}}@127.0.0.1:1/deliver?key={{secret "TOKEN"}}'
`, len(pass), recvHost, hook.URL))
	var seen []string
	for _, j := range []string{"cmd", "hook", "down", "mailed"} {
		out, err := tandemErr(s, "run", j, "--wait", "--timeout", "60s")
		if (err != nil) != (j == "down") {
			t.Fatalf("run %s: %v %s", j, err, out)
		}
		seen = append(seen, out)
	}
	mu.Lock()
	if len(got) != 3 || got[0] != "alice:"+pass || got[1] != tok || got[2] != tok {
		t.Fatalf("the receiver got %q: the secrets were not resolved", got)
	}
	mu.Unlock()
	// The deliveries: the mail and the webhook arrive with the secrets resolved; the
	// webhook to nowhere has failed attempts to show.
	var dls []api.Delivery
	testutil.Wait(t, 60*time.Second, "the email and webhook delivered, the failing one tried", func() bool {
		if err := json.Unmarshal([]byte(tandem(t, s, "deliveries", "--json")), &dls); err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, d := range dls {
			if d.State == "delivered" || (d.Entry == 2 && d.Attempts >= 1) {
				done++
			}
		}
		return done == 3
	})
	if mails := box.got(); len(mails) != 1 || !strings.Contains(mails[0], "report.txt") {
		t.Fatalf("mails with the SMTP password a secret: %q", mails)
	}
	hookMu.Lock()
	if len(hooks) != 1 || hooks[0].Header.Get("Authorization") != "Bearer "+hookTok || hooks[0].URL.Query().Get("key") != hookTok {
		t.Fatalf("webhook requests: %d, headers %v", len(hooks), hooks)
	}
	ts, _ := strconv.ParseInt(hooks[0].Header.Get("webhook-timestamp"), 10, 64)
	if sig, _ := channel.Sign(hookSecret, hooks[0].Header.Get("webhook-id"), ts, hookBodies[0]); sig != hooks[0].Header.Get("webhook-signature") {
		t.Fatalf("webhook signature %q, want %q (signed with the secret's value)", hooks[0].Header.Get("webhook-signature"), sig)
	}
	hookMu.Unlock()
	for _, d := range dls {
		seen = append(seen, tandem(t, s, "deliveries", "show", fmt.Sprint(d.ID)), tandem(t, s, "deliveries", "show", fmt.Sprint(d.ID), "--json"))
	}
	seen = append(seen, tandem(t, s, "deliveries"), tandem(t, s, "job", "show", "mailed"), tandem(t, s, "job", "show", "mailed", "--json"))
	var rs []run
	if err := json.Unmarshal([]byte(tandem(t, s, "runs", "--json")), &rs); err != nil || len(rs) != 4 {
		t.Fatalf("runs: %v %+v", err, rs)
	}
	for _, r := range rs {
		seen = append(seen, tandem(t, s, "runs", "show", fmt.Sprint(r.ID)), tandem(t, s, "runs", "show", fmt.Sprint(r.ID), "--json"))
	}
	seen = append(seen, tandem(t, s, "job", "list", "--json"), tandem(t, s, "job", "show", "hook"), tandem(t, s, "job", "show", "down", "--json"),
		tandem(t, s, "events", "--json"), tandem(t, s, "secret", "list", "--json"), tandem(t, s, "runs"))
	all := strings.Join(seen, "\n")
	if !strings.Contains(all, "pass is «secret DB_PASS»") || !strings.Contains(all, `{{secret \"TOKEN\"}}`) || !strings.Contains(all, "secret.set") ||
		!strings.Contains(all, "got Authorization Bearer «secret HOOK_TOKEN» key «secret HOOK_TOKEN»") || !strings.Contains(all, "alice:***@127.0.0.1:1") {
		t.Fatalf("the scenario's outputs do not show what they should:\n%s", all)
	}
	// The server's log, the repository file and what the CLI showed.
	time.Sleep(200 * time.Millisecond) // the last log lines of the runs
	all += strings.Join(s.logLines(), "\n")
	for _, v := range []string{pass, tok, smtpPass, hookTok, hookSecret} {
		if i := strings.Index(all, v); i >= 0 {
			t.Errorf("secret value %q shows: …%s…", v, all[max(0, i-200):min(len(all), i+100)])
		}
	}
	db, err := os.ReadFile(filepath.Join(dir, "data", "tandem.db"))
	for _, v := range []string{pass, tok, smtpPass, hookTok, hookSecret} {
		if err == nil && strings.Contains(string(db), v) {
			t.Errorf("secret value %q is in the repository file in clear", v)
		}
	}
}

// authMailbox is an SMTP server in the test process that takes mail only after AUTH
// CRAM-MD5 with one user's password (the mechanism a client uses without TLS).
type authMailbox struct {
	user, pass string
	addr       string
	mu         sync.Mutex
	mails      []string
}

func newAuthMailbox(t *testing.T, user, pass string) *authMailbox {
	t.Helper()
	b := &authMailbox{user: user, pass: pass}
	srv := smtp.NewServer(b)
	srv.AllowInsecureAuth = true
	b.addr = serveSMTP(t, srv)
	return b
}

func (b *authMailbox) got() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.mails...)
}

func (b *authMailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &authSession{b: b}, nil }

type authSession struct {
	b      *authMailbox
	authed bool
}

func (s *authSession) AuthMechanisms() []string         { return []string{"CRAM-MD5"} }
func (s *authSession) Auth(string) (sasl.Server, error) { return &cramMD5{s: s}, nil }

// cramMD5 is the server side of RFC 2195: a challenge, then "user HEX(HMAC-MD5(pass, challenge))".
type cramMD5 struct {
	s         *authSession
	challenge string
}

func (c *cramMD5) Next(resp []byte) ([]byte, bool, error) {
	if c.challenge == "" {
		c.challenge = fmt.Sprintf("<%d.test@localhost>", time.Now().UnixNano())
		return []byte(c.challenge), false, nil
	}
	user, digest, _ := strings.Cut(string(resp), " ")
	mac := hmac.New(md5.New, []byte(c.s.b.pass))
	mac.Write([]byte(c.challenge))
	if user != c.s.b.user || digest != hex.EncodeToString(mac.Sum(nil)) {
		return nil, true, errors.New("bad credentials")
	}
	c.s.authed = true
	return nil, true, nil
}
func (s *authSession) Reset()        {}
func (s *authSession) Logout() error { return nil }
func (s *authSession) Mail(string, *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *authSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *authSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.mu.Lock()
	s.b.mails = append(s.b.mails, string(data))
	s.b.mu.Unlock()
	return nil
}
