package api

import (
	"net/http"
)

// Protect wraps the API's handler with Go's cross-origin protection: a browser request
// that changes state (any method but GET, HEAD, OPTIONS) from another origin, told by
// its Sec-Fetch-Site or Origin header, is refused with 403, whatever its content type
// (a cross-site text/plain POST needs no CORS preflight). Clients that are not browsers
// send neither header and pass.
func Protect(h http.Handler) http.Handler {
	p := http.NewCrossOriginProtection()
	p.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusForbidden, Error{Error: "cross-origin request refused: a browser page of another site may not change " +
			"anything here (" + r.Method + " " + r.URL.Path + ")", Field: "origin"})
	}))
	return p.Handler(h)
}
