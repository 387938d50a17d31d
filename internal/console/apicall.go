package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/tandemhq/tandem/internal/api"
)

// apiError is an error answer of the API: its status and body.
type apiError struct {
	Code  int
	Body  api.Error
	Field string
}

func (e *apiError) Error() string { return e.Body.Error }

func errText(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Body.Error
	}
	return err.Error()
}

// errField is the field an API error names, else def.
func errField(err error, def string) string {
	var ae *apiError
	if errors.As(err, &ae) && ae.Field != "" {
		return ae.Field
	}
	return def
}

func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return http.StatusInternalServerError
}

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v) // request types always encode
	return b
}

// recorder keeps an in-process API answer.
type recorder struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}

// call sends a request to the node's API in process, as the browser's session (the
// principal the console's guard put in r's context), from the browser's address, and
// decodes a JSON answer into out (nil: ignored). An error answer is an *apiError.
func (c *Console) call(r *http.Request, method, path string, body []byte, out any) error {
	return c.callType(r, method, path, "application/json", body, out)
}

func (c *Console) callType(r *http.Request, method, path, contentType string, body []byte, out any) error {
	return c.callHeader(r, method, path, http.Header{"Content-Type": {contentType}}, body, out)
}

// callHeader is call with request headers of its own.
func (c *Console) callHeader(r *http.Request, method, path string, h http.Header, body []byte, out any) error {
	req, err := http.NewRequestWithContext(r.Context(), method, path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("api request %s %s: %w", method, path, err)
	}
	req.RemoteAddr, req.Host, req.TLS = r.RemoteAddr, r.Host, r.TLS
	for k, v := range h {
		if k != "Content-Type" || body != nil {
			req.Header[k] = v
		}
	}
	rec := &recorder{h: http.Header{}}
	c.p.API.ServeHTTP(rec, req)
	if rec.code >= 400 {
		e := &apiError{Code: rec.code}
		if json.Unmarshal(rec.body.Bytes(), &e.Body) != nil || e.Body.Error == "" {
			e.Body.Error = fmt.Sprintf("%s %s: %d %s", method, path, rec.code, http.StatusText(rec.code))
		}
		e.Field = e.Body.Field
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("decode the answer of %s %s: %w", method, path, err)
	}
	return nil
}

// proxy serves an API answer straight to the browser (downloads), as the session.
func (c *Console) proxy(w http.ResponseWriter, r *http.Request, path string) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, path, nil)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	req.RemoteAddr, req.Host, req.TLS = r.RemoteAddr, r.Host, r.TLS
	if rg := r.Header.Get("Range"); rg != "" {
		req.Header.Set("Range", rg)
	}
	c.p.API.ServeHTTP(w, req)
}
