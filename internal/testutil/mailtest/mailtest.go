// Package mailtest is a real SMTP server (emersion/go-smtp) in a test's process: a Box
// keeps every mail it accepts, plain and without authentication.
package mailtest

import (
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// Box is an SMTP backend that keeps the mails it accepts.
type Box struct {
	mu    sync.Mutex
	mails []string
	down  bool
}

// Start serves a new Box on a loopback port until the test ends; it returns the box and
// its address.
func Start(t testing.TB) (*Box, *net.TCPAddr) {
	t.Helper()
	b := &Box{}
	srv := smtp.NewServer(b)
	srv.AllowInsecureAuth = true
	return b, Serve(t, srv)
}

// Serve serves srv on a loopback port until the test ends and returns its address.
// Closing the listener too ends Serve even when Close came before Serve began (go-smtp
// then does not know the listener yet): no accept loop is left behind.
func Serve(t testing.TB, srv *smtp.Server) *net.TCPAddr {
	t.Helper()
	if srv.Domain == "" {
		srv.Domain = "localhost"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); ln.Close(); <-done })
	return ln.Addr().(*net.TCPAddr)
}

// SetDown makes the box refuse every mail (554 to DATA), or take them again.
func (b *Box) SetDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}

// Mails are the raw mails accepted, in order.
func (b *Box) Mails() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.mails...)
}

var subjectLine = regexp.MustCompile(`(?m)^Subject: (.*)\r?$`)

// Subjects are the Subject lines of the mails accepted, in order.
func (b *Box) Subjects() []string {
	var out []string
	for _, m := range b.Mails() {
		if s := subjectLine.FindStringSubmatch(m); s != nil {
			out = append(out, strings.TrimSpace(s[1]))
		}
	}
	return out
}

// WithSubject counts the mails whose subject contains s.
func (b *Box) WithSubject(s string) int {
	n := 0
	for _, sub := range b.Subjects() {
		if strings.Contains(sub, s) {
			n++
		}
	}
	return n
}

// NewSession implements smtp.Backend.
func (b *Box) NewSession(*smtp.Conn) (smtp.Session, error) { return session{b}, nil }

type session struct{ b *Box }

func (session) Reset()                               {}
func (session) Logout() error                        { return nil }
func (session) Mail(string, *smtp.MailOptions) error { return nil }
func (session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.b.down {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 0, 0}, Message: "down for the test"}
	}
	s.b.mails = append(s.b.mails, string(data))
	return nil
}
