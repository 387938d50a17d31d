package channel

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/tandemhq/tandem/internal/job"
)

// SMTP security modes.
const (
	TLSStartTLS = "starttls" // plain connection upgraded by STARTTLS, which must be offered
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // no encryption (a relay on localhost)
)

// SMTPTimeoutDefault bounds connecting and each SMTP exchange when SMTP.Timeout is 0.
const SMTPTimeoutDefault = 30 * time.Second

// SMTP is the mail server every email entry is sent through.
type SMTP struct {
	Host     string
	Port     int // 0: 587 for starttls, 465 for tls, 25 for none
	From     string
	Username string // "" : no authentication
	Password string
	TLS      string // TLSStartTLS (""), TLSImplicit or TLSNone
	Timeout  time.Duration
	// TLSConfig, if set, replaces the default (system roots, ServerName Host): tests
	// give their own CA here.
	TLSConfig *tls.Config
}

// Email sends mails through an SMTP server.
type Email struct {
	SMTP SMTP
}

// Send implements Sender. Outputs the entry selects are attached while they come to
// at most MaxAttachBytes together; above that the mail carries their links instead.
func (e *Email) Send(ctx context.Context, d job.Deliver, m Message) (Result, error) {
	if e.SMTP.Host == "" {
		return Result{}, fmt.Errorf("no [smtp] host is configured on this node: %w", ErrPermanent)
	}
	d.Default()
	files := selected(d, m.Files)
	var total int64
	for _, f := range files {
		total += f.Size
	}
	attach := total <= d.MaxAttachBytes
	data := m.Data
	data.Outputs = make([]job.TemplateOutput, len(data.Outputs))
	copy(data.Outputs, m.Data.Outputs)
	for i := range data.Outputs {
		data.Outputs[i].Linked = !attach && d.Wants(data.Outputs[i].Name)
	}
	var subject, body string
	if m.Notice != nil {
		subject, body, attach = m.Notice.Subject, m.Notice.Body, false
	} else {
		var err error
		if subject, err = render("subject", cmp.Or(d.Subject, job.DeliverSubjectDefault), data); err != nil {
			return Result{}, err
		}
		if body, err = render("body", cmp.Or(d.Body, job.DeliverBodyDefault), data); err != nil {
			return Result{}, err
		}
	}
	msg := gomail.NewMsg()
	if err := msg.From(e.SMTP.From); err != nil {
		return Result{}, fmt.Errorf("[smtp] from %q: %v: %w", e.SMTP.From, err, ErrPermanent)
	}
	for _, set := range []struct {
		fn    func(...string) error
		addrs []string
	}{{msg.To, d.Email}, {msg.Cc, d.CC}, {msg.Bcc, d.BCC}} {
		if len(set.addrs) == 0 {
			continue
		}
		if err := set.fn(set.addrs...); err != nil {
			return Result{}, fmt.Errorf("recipients: %v: %w", err, ErrPermanent)
		}
	}
	msg.Subject(subject)
	msg.SetMessageIDWithValue(MessageID(m.Key, e.SMTP.From))
	msg.SetDateWithValue(m.Now)
	msg.SetGenHeader("X-Tandem-Delivery", m.Key)
	msg.SetBodyString(gomail.TypeTextPlain, body)
	if attach {
		for _, f := range files {
			b, err := readAll(ctx, f)
			if err != nil {
				return Result{}, err
			}
			if err := msg.AttachReader(f.Name, bytes.NewReader(b)); err != nil {
				return Result{}, fmt.Errorf("attach %s: %w", f.Name, err)
			}
		}
	}
	c, err := e.client(ctx, m.Secrets)
	if err != nil {
		return Result{}, err
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		var se *gomail.SendError
		if errors.As(err, &se) && se.ErrorCode() >= 500 && !se.IsTemp() {
			return Result{Response: smtpReply(se)}, fmt.Errorf("smtp %s: %v: %w", c.ServerAddr(), err, ErrPermanent)
		}
		r := Result{}
		if se != nil {
			r.Response = smtpReply(se)
		}
		return r, fmt.Errorf("smtp %s: %w", c.ServerAddr(), err)
	}
	return Result{Response: strings.TrimSpace(msg.ServerResponse())}, nil
}

func smtpReply(se *gomail.SendError) string {
	if se.ErrorCode() == 0 {
		return ""
	}
	return strings.TrimSpace(fmt.Sprintf("%d %s", se.ErrorCode(), se.EnhancedStatusCode()))
}

func (e *Email) client(ctx context.Context, secrets Secrets) (*gomail.Client, error) {
	s := e.SMTP
	if job.SecretRef.MatchString(s.Password) {
		// Resolved now, on the node that sends; never kept.
		if secrets == nil {
			return nil, errors.New("[smtp] password refers to a secret and this node cannot resolve secrets")
		}
		pw, err := secrets.Resolve(ctx, s.Password)
		if err != nil {
			return nil, fmt.Errorf("[smtp] password: %w", err)
		}
		s.Password = pw
	}
	opts := []gomail.Option{gomail.WithTimeout(cmp.Or(s.Timeout, SMTPTimeoutDefault))}
	port := s.Port
	switch s.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
		port = cmp.Or(port, 465)
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
		port = cmp.Or(port, 25)
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
		port = cmp.Or(port, 587)
	}
	opts = append(opts, gomail.WithPort(port))
	if s.TLSConfig != nil {
		opts = append(opts, gomail.WithTLSConfig(s.TLSConfig))
	}
	if s.Username != "" {
		// The strongest mechanism both sides offer (SCRAM, CRAM-MD5, PLAIN, LOGIN);
		// go-mail refuses the plain-text ones without TLS.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.Username), gomail.WithPassword(s.Password))
	}
	c, err := gomail.NewClient(s.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client for %s: %v: %w", s.Host, err, ErrPermanent)
	}
	return c, nil
}

// MessageID is the Message-ID (without angle brackets) of every mail of delivery key:
// the key at the sender's domain.
func MessageID(key, from string) string {
	domain := "tandem.invalid"
	if a, err := mail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
			domain = d
		}
	}
	return "tandem." + key + "@" + domain
}
