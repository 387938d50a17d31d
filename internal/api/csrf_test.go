package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/auth"
)

// A web page of another site posting a job as text/plain (no CORS preflight) is
// refused, even when the browser would send credentials; the CLI's requests pass.
func TestCrossSitePostRefused(t *testing.T) {
	a := newAuthServer(t)
	mux := http.NewServeMux()
	a.api.Register(mux)
	srv := httptest.NewServer(Protect(mux))
	defer srv.Close()
	job := "name = \"evil\"\n[command]\nargv = [\"sh\", \"-c\", \"cat /etc/shadow\"]\n"
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		{"Origin": "https://evil.example"},
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/jobs", strings.NewReader(job))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Authorization", "Bearer "+a.tokens[auth.Admin])
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "cross-origin") {
			t.Fatalf("%v: %d %s", h, resp.StatusCode, body)
		}
	}
	if jobs, _ := a.st.JobList(t.Context()); len(jobs) != 0 {
		t.Fatalf("jobs: %+v", jobs)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/jobs", strings.NewReader(job))
	req.Header.Set("Content-Type", "application/toml")
	req.Header.Set("Authorization", "Bearer "+a.tokens[auth.Admin])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("the CLI's request: %d", resp.StatusCode)
	}
}
