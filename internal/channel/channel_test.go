package channel_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtp "github.com/emersion/go-smtp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tandemhq/tandem/internal/channel"
	"github.com/tandemhq/tandem/internal/job"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// message is a run of job "sales" with two outputs.
func message(t *testing.T, files map[string]string) channel.Message {
	m := channel.Message{Key: "dlv_42", Now: time.Now(), Data: job.TemplateData{Job: "sales", RunID: 7, DeliveryID: "dlv_42",
		State: "succeeded", Attempt: 1, ScheduledAt: "2026-03-01T08:00:00+01:00", Date: "2026-03-01", URL: "http://n1/api/v1/runs/7"}}
	for _, name := range []string{"sales.csv", "notes.txt"} {
		body, ok := files[name]
		if !ok {
			continue
		}
		sum := sha256.Sum256([]byte(body))
		f := channel.File{Name: name, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), URL: "http://n1/api/v1/runs/7/outputs/" + name,
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }}
		m.Files = append(m.Files, f)
		m.Data.Outputs = append(m.Data.Outputs, job.TemplateOutput{Name: name, Size: f.Size, SHA256: f.SHA256, URL: f.URL})
	}
	return m
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// --- SMTP: a real server in the test process (emersion/go-smtp) ---

type mailbox struct {
	mu    sync.Mutex
	mails []received
	// refuse, while > 0, answers DATA with this reply code and counts down (reply < 0: forever).
	code   int
	refuse int
}

type received struct {
	from string
	to   []string
	data []byte
	auth string
}

type session struct {
	box  *mailbox
	m    received
	auth string
}

func (b *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{box: b}, nil }

func (s *session) AuthMechanisms() []string { return []string{"PLAIN"} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "reports" || pass != "hunter2" {
			return errors.New("bad credentials")
		}
		s.auth = user
		return nil
	}), nil
}
func (s *session) Reset()        { s.m = received{} }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.m.from = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.to = append(s.m.to, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	if s.box.refuse != 0 {
		s.box.refuse--
		return &smtp.SMTPError{Code: s.box.code, EnhancedCode: smtp.EnhancedCode{s.box.code / 100, 0, 0}, Message: "refused by the test"}
	}
	s.m.data, s.m.auth = b, s.auth
	s.box.mails = append(s.box.mails, s.m)
	return nil
}

func (b *mailbox) got() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.mails...)
}

// testTLS makes a CA and a certificate for 127.0.0.1 signed by it.
func testTLS(t *testing.T) (server *tls.Config, roots *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tandem test CA"}, IsCA: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(caCert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, roots
}

// smtpServer starts a server offering STARTTLS with a certificate of a test CA.
func smtpServer(t *testing.T, box *mailbox, implicit bool) (channel.SMTP, *smtp.Server) {
	t.Helper()
	srvTLS, roots := testTLS(t)
	s := smtp.NewServer(box)
	s.Domain, s.TLSConfig, s.ErrorLog = "localhost", srvTLS, nopLogger{}
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	var ln net.Listener
	var err error
	if implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", srvTLS)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Close() })
	mode := channel.TLSStartTLS
	if implicit {
		mode = channel.TLSImplicit
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return channel.SMTP{Host: "127.0.0.1", Port: port, From: "Tandem <tandem@example.com>", Username: "reports", Password: "hunter2",
		TLS: mode, Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}}, s
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

// A mail arrives over STARTTLS, authenticated, with its headers, body and the selected
// attachments byte for byte.
func TestEmailArrivesWithHeadersBodyAndAttachments(t *testing.T) {
	t.Parallel()
	for _, implicit := range []bool{false, true} {
		t.Run(map[bool]string{false: "starttls", true: "implicit-tls"}[implicit], func(t *testing.T) {
			t.Parallel()
			box := &mailbox{}
			cfg, _ := smtpServer(t, box, implicit)
			csv := "region,total\nemea,42\n"
			m := message(t, map[string]string{"sales.csv": csv, "notes.txt": "not attached"})
			d := job.Deliver{Email: []string{"sales-leads@example.com"}, CC: []string{"Boss <boss@example.com>"}, BCC: []string{"audit@example.com"},
				Subject: "Sales report {{.ScheduledAt}}", Attach: []string{"*.csv"}}
			res, err := (&channel.Email{SMTP: cfg}).Send(ctx(t), d, m)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(res.Response, "2") {
				t.Errorf("response %q, want the server's 2xx reply", res.Response)
			}
			mails := box.got()
			if len(mails) != 1 {
				t.Fatalf("%d mails, want 1", len(mails))
			}
			got := mails[0]
			if got.auth != "reports" || got.from != "tandem@example.com" || strings.Join(got.to, ",") != "sales-leads@example.com,boss@example.com,audit@example.com" {
				t.Fatalf("envelope: auth %q from %q to %v", got.auth, got.from, got.to)
			}
			msg, err := mail.ReadMessage(bytes.NewReader(got.data))
			if err != nil {
				t.Fatal(err)
			}
			h := msg.Header
			if h.Get("Subject") != "Sales report 2026-03-01T08:00:00+01:00" || h.Get("Message-Id") != "<tandem.dlv_42@example.com>" ||
				h.Get("X-Tandem-Delivery") != "dlv_42" || h.Get("Bcc") != "" || !strings.Contains(h.Get("Cc"), "boss@example.com") {
				t.Fatalf("headers: %v", h)
			}
			parts := mimeParts(t, h.Get("Content-Type"), msg.Body)
			if len(parts) != 2 || !strings.Contains(parts[0].body, "Run 7 of sales succeeded") || parts[1].name != "sales.csv" || parts[1].body != csv {
				t.Fatalf("parts: %+v", parts)
			}
		})
	}
}

type part struct{ name, body string }

func mimeParts(t *testing.T, ctype string, body io.Reader) []part {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		t.Fatalf("content type %q: %v", ctype, err)
	}
	r := multipart.NewReader(body, params["boundary"])
	var out []part
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		if p.Header.Get("Content-Transfer-Encoding") == "base64" {
			b, err = base64.StdEncoding.DecodeString(strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", ""), "\n", ""))
			if err != nil {
				t.Fatal(err)
			}
		}
		if p.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			b, _ = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
		}
		out = append(out, part{name: p.FileName(), body: string(b)})
	}
}

// Above max_attach_bytes the mail carries links instead of the files.
func TestEmailLinksInsteadOfLargeAttachments(t *testing.T) {
	t.Parallel()
	box := &mailbox{}
	cfg, _ := smtpServer(t, box, false)
	m := message(t, map[string]string{"sales.csv": strings.Repeat("x", 100)})
	d := job.Deliver{Email: []string{"a@example.com"}, MaxAttachBytes: 10}
	if _, err := (&channel.Email{SMTP: cfg}).Send(ctx(t), d, m); err != nil {
		t.Fatal(err)
	}
	mails := box.got()
	if len(mails) != 1 {
		t.Fatalf("%d mails", len(mails))
	}
	msg, _ := mail.ReadMessage(bytes.NewReader(mails[0].data))
	body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if strings.Contains(msg.Header.Get("Content-Type"), "multipart/mixed") || !strings.Contains(string(body), "sales.csv (100 bytes): http://n1/api/v1/runs/7/outputs/sales.csv") {
		t.Fatalf("content type %q, body %q: want a link, no attachment", msg.Header.Get("Content-Type"), body)
	}
}

// A 4xx reply is an error to retry; a 5xx one is permanent; a server that is down or
// hangs is an error to retry, within the timeout.
func TestEmailRefusalsAndOutages(t *testing.T) {
	t.Parallel()
	box := &mailbox{code: 451, refuse: 1}
	cfg, _ := smtpServer(t, box, false)
	e := &channel.Email{SMTP: cfg}
	m := message(t, nil)
	d := job.Deliver{Email: []string{"a@example.com"}}
	res, err := e.Send(ctx(t), d, m)
	if err == nil || errors.Is(err, channel.ErrPermanent) || !strings.HasPrefix(res.Response, "451") {
		t.Fatalf("4xx: %v (%q), want a temporary error with the reply", err, res.Response)
	}
	box.mu.Lock()
	box.code, box.refuse = 550, 1
	box.mu.Unlock()
	if _, err := e.Send(ctx(t), d, m); !errors.Is(err, channel.ErrPermanent) {
		t.Fatalf("5xx: %v, want permanent", err)
	}
	if _, err := e.Send(ctx(t), d, m); err != nil {
		t.Fatalf("then: %v", err)
	}
	// Down: nothing listens.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := cfg
	down.Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if _, err := (&channel.Email{SMTP: down}).Send(ctx(t), d, m); err == nil || errors.Is(err, channel.ErrPermanent) {
		t.Fatalf("down: %v, want a temporary error", err)
	}
	// Hangs: accepts and says nothing.
	hang, _ := net.Listen("tcp", "127.0.0.1:0")
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	hung := cfg
	hung.Port, hung.Timeout = hang.Addr().(*net.TCPAddr).Port, 300*time.Millisecond
	start := time.Now()
	if _, err := (&channel.Email{SMTP: hung}).Send(ctx(t), d, m); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("hung server: %v after %s, want an error within the timeout", err, time.Since(start))
	}
	if got := len(box.got()); got != 1 {
		t.Fatalf("%d mails accepted, want 1", got)
	}
}

// --- Webhook: a real receiver verifying with the standard-webhooks library ---

func TestWebhookSignedPerStandardWebhooks(t *testing.T) {
	t.Parallel()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bodies [][]byte
	var headers []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := wh.Verify(b, r.Header); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		bodies, headers = append(bodies, b), append(headers, r.Header.Clone())
		mu.Unlock()
	}))
	defer srv.Close()
	csv := "a,b\n1,2\n"
	m := message(t, map[string]string{"sales.csv": csv})
	d := job.Deliver{Webhook: srv.URL + "/hook", Secret: secret}
	res, err := (&channel.Webhook{}).Send(ctx(t), d, m)
	if err != nil || res.Response != "HTTP 200 OK" {
		t.Fatalf("send: %v (%q)", err, res.Response)
	}
	var p channel.WebhookPayload
	if err := json.Unmarshal(bodies[0], &p); err != nil {
		t.Fatal(err)
	}
	if headers[0].Get("webhook-id") != "dlv_42" || p.Type != "run.succeeded" || p.Data.Delivery != "dlv_42" || p.Data.Run != 7 ||
		len(p.Data.Outputs) != 1 || p.Data.Outputs[0].SHA256 != m.Files[0].SHA256 || p.Data.Outputs[0].URL != m.Files[0].URL {
		t.Fatalf("headers %v, payload %+v", headers[0], p)
	}
	// A tampered body fails the library's verification.
	tampered := bytes.Replace(bodies[0], []byte(`"run":7`), []byte(`"run":8`), 1)
	if err := wh.Verify(tampered, headers[0]); err == nil {
		t.Fatal("a tampered body verified")
	}
	// Files included: multipart, still verified over the whole body.
	d.IncludeFiles = true
	if _, err := (&channel.Webhook{}).Send(ctx(t), d, m); err != nil {
		t.Fatal(err)
	}
	mt, params, _ := mime.ParseMediaType(headers[1].Get("Content-Type"))
	if mt != "multipart/form-data" {
		t.Fatalf("content type %q", headers[1].Get("Content-Type"))
	}
	form, err := multipart.NewReader(bytes.NewReader(bodies[1]), params["boundary"]).ReadForm(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := form.File["file"][0].Open()
	got, _ := io.ReadAll(f)
	if len(form.Value["payload"]) != 1 || form.File["file"][0].Filename != "sales.csv" || string(got) != csv {
		t.Fatalf("form: %+v, file %q", form.Value, got)
	}
}

// 410 is ErrGone; 429 and 5xx carry Retry-After; a receiver that hangs times out.
func TestWebhookStatuses(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gone":
			w.WriteHeader(http.StatusGone)
		case "/busy":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/down":
			w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/hang":
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}
	}))
	defer srv.Close()
	send := func(path string, timeout time.Duration) (channel.Result, error) {
		return (&channel.Webhook{}).Send(ctx(t), job.Deliver{Webhook: srv.URL + path, Timeout: job.Duration(timeout)}, message(t, nil))
	}
	if _, err := send("/gone", 0); !errors.Is(err, channel.ErrGone) {
		t.Fatalf("410: %v", err)
	}
	if r, err := send("/busy", 0); err == nil || r.RetryAfter != 7*time.Second {
		t.Fatalf("429: %v, retry after %s", err, r.RetryAfter)
	}
	if r, err := send("/down", 0); err == nil || r.RetryAfter < 80*time.Second || r.RetryAfter > 91*time.Second || !strings.HasPrefix(r.Response, "HTTP 503") {
		t.Fatalf("503: %v, %+v", err, r)
	}
	if _, err := send("/hang", 200*time.Millisecond); err == nil || errors.Is(err, channel.ErrPermanent) {
		t.Fatalf("hang: %v", err)
	}
	if r, err := send("/moved", 0); err == nil || !strings.HasPrefix(r.Response, "HTTP 302") {
		t.Fatalf("redirect: %v %+v, want a failure", err, r)
	}
	// Our signature is what the library computes.
	wh, _ := standardwebhooks.NewWebhook(secret)
	ts := time.Unix(1700000000, 0)
	want, _ := wh.Sign("dlv_1", ts, []byte("{}"))
	if got, _ := channel.Sign(secret, "dlv_1", ts.Unix(), []byte("{}")); got != want {
		t.Fatalf("Sign = %q, library %q", got, want)
	}
}

// --- Directory ---

func TestDirectoryWritesAtomicallyAndHonoursOverwrite(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	m := message(t, map[string]string{"sales.csv": "v1\n", "notes.txt": "n\n"})
	d := job.Deliver{Directory: root + "/{{.Job}}/{{.Date}}"}
	res, err := channel.Directory{}.Send(ctx(t), d, m)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "sales", "2026-03-01")
	if b, _ := os.ReadFile(filepath.Join(dir, "sales.csv")); string(b) != "v1\n" || !strings.Contains(res.Response, "2 files written") {
		t.Fatalf("sales.csv = %q, response %q", b, res.Response)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("directory holds %v: temporary files left behind?", entries)
	}
	// Overwrite on (the default): the new bytes replace the old.
	m2 := message(t, map[string]string{"sales.csv": "v2\n"})
	if _, err := (channel.Directory{}).Send(ctx(t), d, m2); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sales.csv")); string(b) != "v2\n" {
		t.Fatalf("after overwrite: %q", b)
	}
	// Overwrite off: the same bytes again are fine (a repeated delivery), others refused.
	off := false
	d.Overwrite = &off
	if res, err := (channel.Directory{}).Send(ctx(t), d, m2); err != nil || !strings.Contains(res.Response, "already there") {
		t.Fatalf("same bytes, overwrite off: %v %q", err, res.Response)
	}
	if _, err := (channel.Directory{}).Send(ctx(t), d, message(t, map[string]string{"sales.csv": "v3\n"})); !errors.Is(err, channel.ErrPermanent) {
		t.Fatalf("other bytes, overwrite off: %v, want permanent", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sales.csv")); string(b) != "v2\n" {
		t.Fatalf("overwrite off replaced the file: %q", b)
	}
}
