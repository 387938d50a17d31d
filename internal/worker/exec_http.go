package worker

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem/internal/job"
)

// RunHTTP sends h once for x with client (http.DefaultClient when nil) and reads the
// response. The response body becomes Stdout, kept up to x.OutputLimit; the rest is read
// and dropped so the connection can be reused. Nothing is written to x.OutputDir, but it
// is still listed so every Result has the same shape.
func RunHTTP(ctx context.Context, x Execution, h job.HTTP, client *http.Client) Result {
	ctx, cancel := x.attemptContext(ctx)
	defer cancel()
	if client == nil {
		client = http.DefaultClient
	}

	body := newCapture(x.outputLimit())
	r := Result{ExitCode: -1}
	sendHTTP(ctx, h, client, body, &r)
	r.Stdout, r.StdoutTruncated = body.bytes()
	r.collectInto(x.OutputDir)
	return r
}

// sendHTTP does the work of RunHTTP, recording into r the status code and error.
func sendHTTP(ctx context.Context, h job.HTTP, client *http.Client, body io.Writer, r *Result) {
	req, err := newRequest(ctx, h)
	if err != nil {
		r.Err = err
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			r.markStopped(ctx)
			return
		}
		r.Err = fmt.Errorf("send request: %w", err)
		return
	}
	defer resp.Body.Close()
	r.ExitCode = resp.StatusCode

	if _, err := io.Copy(body, resp.Body); err != nil {
		if ctx.Err() != nil {
			r.markStopped(ctx)
			return
		}
		r.Err = fmt.Errorf("read response: %w", err)
		return
	}
	if !statusExpected(resp.StatusCode, h.ExpectStatus) {
		r.Err = fmt.Errorf("unexpected status %d (expected %s)", resp.StatusCode, expectedText(h.ExpectStatus))
	}
}

// newRequest builds the request h describes, bound to ctx.
func newRequest(ctx context.Context, h job.HTTP) (*http.Request, error) {
	var body io.Reader
	if h.Body != "" {
		body = strings.NewReader(h.Body)
	}
	req, err := http.NewRequestWithContext(ctx, cmp.Or(h.Method, job.HTTPMethodDefault), h.URL, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range h.Headers {
		// net/http sends req.Host, not a Host header; honour the operator's intent.
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	return req, nil
}

// statusExpected reports whether code is one of want, or a 2xx when want is empty.
func statusExpected(code int, want []int) bool {
	if len(want) == 0 {
		return code >= 200 && code <= 299
	}
	return slices.Contains(want, code)
}

// expectedText describes want for an error message: "2xx" or "200, 204".
func expectedText(want []int) string {
	if len(want) == 0 {
		return "2xx"
	}
	texts := make([]string, len(want))
	for i, code := range want {
		texts[i] = strconv.Itoa(code)
	}
	return strings.Join(texts, ", ")
}
