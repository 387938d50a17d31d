package console

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Under TLS the session cookie is Secure; over plain HTTP it cannot be (the browser
// would drop it).
func TestSessionCookieSecureUnderTLS(t *testing.T) {
	t.Parallel()
	c := &Console{}
	for _, withTLS := range []bool{false, true} {
		r := httptest.NewRequest(http.MethodPost, "/login", nil)
		if withTLS {
			r.TLS = &tls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		c.setCookie(w, r, SessionCookie, "tdm_x", 3600e9)
		ck := w.Header().Get("Set-Cookie")
		if strings.Contains(ck, "Secure") != withTLS || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") {
			t.Errorf("TLS %v: %s", withTLS, ck)
		}
	}
}

// A redirect after login or an action stays on this site.
func TestSafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"/jobs?q=a": "/jobs?q=a", "//evil.example/": "", "https://evil.example/": "", "/\\evil": "", "": ""} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// fieldLine finds the line of the field an API error names.
func TestFieldLine(t *testing.T) {
	t.Parallel()
	file := "name = \"j\"\ntimeout = \"0s\"\n[command]\nargv = []\n\n[[deliver]]\nemail = [\"x\"]\n[[deliver]]\nsecret = \"s\"\n"
	for field, want := range map[string]int{"timeout": 2, "command.argv": 4, "deliver[1].secret": 9, "name": 1, "nothing": 0, "": 0} {
		if got := fieldLine(file, field); got != want {
			t.Errorf("fieldLine(%q) = %d, want %d", field, got, want)
		}
	}
}
