package api

import (
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// withinBudget fails t when fn, given n bytes of input, allocates or takes more than a
// generous budget proportional to n: a request's parsers must cost linear time and memory.
func withinBudget(t *testing.T, n int, fn func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	fn()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if alloc, budget := after.TotalAlloc-before.TotalAlloc, uint64(64<<10+256*n); alloc > budget {
		t.Fatalf("%d bytes of input allocated %d bytes, over the budget of %d", n, alloc, budget)
	}
	if budget := 500*time.Millisecond + time.Duration(n)*10*time.Microsecond; took > budget {
		t.Fatalf("%d bytes of input took %s, over the budget of %s", n, took, budget)
	}
}

// FuzzRunListQuery: any query string is parsed or refused with a field, within budget.
func FuzzRunListQuery(f *testing.F) {
	f.Add("job=sales&state=failed,queued&limit=50&before=100")
	f.Add("limit=-1")
	f.Add("limit=99999999999999999999999")
	f.Add("state=" + strings.Repeat(",", 5000))
	f.Add(strings.Repeat("state=running&", 2000))
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		withinBudget(t, len(raw), func() {
			p, err := parseRunListQuery(q)
			if br, ok := err.(*badRequest); err != nil && (!ok || br.field == "") {
				t.Fatalf("error %v names no field", err)
			}
			if err == nil && (p.Limit < 0 || p.Limit > RunListLimitMax || p.BeforeID < 0) {
				t.Fatalf("accepted %+v", p)
			}
		})
	})
}

// FuzzSwitchRequest: any body is read as {"to": NODE} or refused with a field, within budget.
func FuzzSwitchRequest(f *testing.F) {
	f.Add([]byte(`{"to": "b"}`))
	f.Add([]byte(``))
	f.Add([]byte(`{"to": 5}`))
	f.Add([]byte(`{"to": "b"} {"to": "c"}`))
	f.Add([]byte(strings.Repeat(`{"to": `, 10000)))
	f.Add([]byte(strings.Repeat("[", 20000)))
	f.Fuzz(func(t *testing.T, body []byte) {
		withinBudget(t, len(body), func() {
			if _, err := parseSwitchRequest(body); err != nil {
				if br, ok := err.(*badRequest); !ok || br.field == "" {
					t.Fatalf("error %v names no field", err)
				}
			}
		})
	})
}
