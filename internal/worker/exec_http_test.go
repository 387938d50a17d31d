package worker

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/job"
)

// sentRequest is what a test server saw of a request.
type sentRequest struct {
	method, path, host, body string
	header                   http.Header
}

// recordingServer answers every request with status and body, and passes on what it saw.
func recordingServer(t *testing.T, status int, body string) (*httptest.Server, <-chan sentRequest) {
	t.Helper()
	seen := make(chan sentRequest, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen <- sentRequest{r.Method, r.URL.Path, r.Host, string(b), r.Header.Clone()}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

// blockingServer holds every request until the client gives up, telling entered when
// one arrives.
func blockingServer(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	entered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv, entered
}

func TestRunHTTPSendsRequest(t *testing.T) {
	t.Parallel()
	srv, seen := recordingServer(t, http.StatusOK, "report queued")
	h := job.HTTP{
		Method:  "POST",
		URL:     srv.URL + "/reports/daily",
		Headers: map[string]string{"X-Report": "sales", "Content-Type": "application/json", "Host": "reports.example"},
		Body:    `{"region":"emea"}`,
	}
	r := RunHTTP(context.Background(), newExecution(t), h, srv.Client())
	if r.Err != nil || r.ExitCode != 200 || string(r.Stdout) != "report queued" || r.StdoutTruncated {
		t.Fatalf("got Err %q ExitCode %d Stdout %q truncated %v", errText(r.Err), r.ExitCode, r.Stdout, r.StdoutTruncated)
	}
	if len(r.Outputs) != 0 {
		t.Errorf("Outputs = %v, want none", r.Outputs)
	}
	got := <-seen
	if got.method != "POST" || got.path != "/reports/daily" || got.body != `{"region":"emea"}` || got.host != "reports.example" {
		t.Errorf("server saw %s %s host %q body %q", got.method, got.path, got.host, got.body)
	}
	if got.header.Get("X-Report") != "sales" || got.header.Get("Content-Type") != "application/json" {
		t.Errorf("server saw headers %v", got.header)
	}
}

func TestRunHTTPDefaultsToGET(t *testing.T) {
	t.Parallel()
	srv, seen := recordingServer(t, http.StatusNoContent, "")
	r := RunHTTP(context.Background(), newExecution(t), job.HTTP{URL: srv.URL}, srv.Client())
	if r.Err != nil || r.ExitCode != 204 {
		t.Fatalf("got Err %q ExitCode %d, want success with 204", errText(r.Err), r.ExitCode)
	}
	if got := <-seen; got.method != "GET" || got.body != "" {
		t.Errorf("server saw %s with body %q, want GET without one", got.method, got.body)
	}
}

func TestRunHTTPExpectStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		status  int
		expect  []int
		wantErr string
	}{
		{"listed", 201, []int{201}, "<nil>"},
		{"listed non-2xx", 409, []int{200, 409}, "<nil>"},
		{"any 2xx", 202, nil, "<nil>"},
		{"not listed", 200, []int{201, 202}, "unexpected status 200 (expected 201, 202)"},
		{"server error", 500, nil, "unexpected status 500 (expected 2xx)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := recordingServer(t, tc.status, "body of "+tc.name)
			h := job.HTTP{URL: srv.URL, ExpectStatus: tc.expect}
			r := RunHTTP(context.Background(), newExecution(t), h, srv.Client())
			if errText(r.Err) != tc.wantErr || r.ExitCode != tc.status {
				t.Errorf("got Err %q ExitCode %d, want %q %d", errText(r.Err), r.ExitCode, tc.wantErr, tc.status)
			}
			if string(r.Stdout) != "body of "+tc.name {
				t.Errorf("Stdout = %q, want the body kept on failure too", r.Stdout)
			}
		})
	}
}

func TestRunHTTPTimeout(t *testing.T) {
	t.Parallel()
	srv, _ := blockingServer(t)
	x := newExecution(t)
	x.Timeout = 300 * time.Millisecond
	r := RunHTTP(context.Background(), x, job.HTTP{URL: srv.URL}, srv.Client())
	if !r.TimedOut || r.Canceled || errText(r.Err) != "timed out after 300ms" || r.ExitCode != -1 {
		t.Errorf("got TimedOut %v Canceled %v Err %q ExitCode %d, want a timeout",
			r.TimedOut, r.Canceled, errText(r.Err), r.ExitCode)
	}
}

func TestRunHTTPCanceled(t *testing.T) {
	t.Parallel()
	srv, entered := blockingServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-entered:
			cancel()
		case <-ctx.Done():
		}
	}()
	r := RunHTTP(ctx, newExecution(t), job.HTTP{URL: srv.URL}, srv.Client())
	if !r.Canceled || r.TimedOut || errText(r.Err) != "canceled" {
		t.Errorf("got Canceled %v TimedOut %v Err %q, want canceled", r.Canceled, r.TimedOut, errText(r.Err))
	}
}

func TestRunHTTPTruncatesBody(t *testing.T) {
	t.Parallel()
	srv, _ := recordingServer(t, http.StatusOK, strings.Repeat("r", 200_000))
	x := newExecution(t)
	x.OutputLimit = 1000
	r := RunHTTP(context.Background(), x, job.HTTP{URL: srv.URL}, srv.Client())
	if r.Err != nil || string(r.Stdout) != strings.Repeat("r", 1000) || !r.StdoutTruncated {
		t.Errorf("got Err %q, %d bytes, truncated %v; want the first 1000 and truncated",
			errText(r.Err), len(r.Stdout), r.StdoutTruncated)
	}
}

func TestRunHTTPBadRequest(t *testing.T) {
	t.Parallel()
	r := RunHTTP(context.Background(), newExecution(t), job.HTTP{URL: "http://[::1"}, nil)
	if r.Err == nil || !strings.HasPrefix(r.Err.Error(), "build request: ") || r.ExitCode != -1 {
		t.Errorf("got Err %q ExitCode %d, want a build request error", errText(r.Err), r.ExitCode)
	}
}
