package schedule

import (
	"math"
	"time"
)

// Mapping civil wall readings (seconds since 1970-01-01T00:00 read as UTC, "wall seconds")
// to instants. resolve follows the fixed-time DST rule of the package doc; interval
// expressions only use the zone periods (span), whose wall ranges map one-to-one onto
// their instants. Zone periods come from time.Time.ZoneBounds; nothing here assumes
// transitions fall on the hour, or that a day has only one of them.

// lookaround bounds, in seconds, how far an instant can be from its wall reading: no UTC
// offset in tzdata exceeds 16 hours, so 30 hours leaves room.
const lookaround = 30 * 3600

// span is one zone period: instants [start, end) share the UTC offset off (seconds).
// start is math.MinInt64 and end math.MaxInt64 when unbounded.
type span struct {
	start, end int64
	off        int64
}

func spanAt(loc *time.Location, x int64) span {
	t := time.Unix(x, 0).In(loc)
	_, off := t.Zone()
	s, e := t.ZoneBounds()
	sp := span{start: math.MinInt64, end: math.MaxInt64, off: int64(off)}
	if !s.IsZero() {
		sp.start = min(s.Unix(), x) // defensive: a span must contain its instant
	}
	if !e.IsZero() {
		sp.end = e.Unix()
	}
	if sp.end <= x {
		// Go bug (golang/go#81583): for years served by a zone's TZ footer rule,
		// ZoneBounds ends the last period of a leap year a day early, at the start of
		// UTC December 31. The period really runs to the end of that UTC day.
		sp.end = (floorDiv(x, secondsPerDay) + 1) * secondsPerDay
	}
	return sp
}

// wallEnd is the first wall reading not shown by sp (exclusive end of its wall range).
func (sp span) wallEnd() int64 {
	if sp.end == math.MaxInt64 {
		return math.MaxInt64
	}
	return sp.end + sp.off
}

func (sp span) wallStart() int64 {
	if sp.start == math.MinInt64 {
		return math.MinInt64
	}
	return sp.start + sp.off
}

// zoneCursor caches the span last used, so walking consecutive candidates costs one
// comparison each except near transitions.
type zoneCursor struct {
	loc   *time.Location
	sp    span
	valid bool
	// clean is the first wall reading of sp that no earlier instant showed: readings in
	// [clean, sp.wallEnd()) map one-to-one onto sp's instants.
	clean int64
	// skipOK: every reading in [sp.wallStart(), clean) was shown by the span just before
	// sp, i.e. before sp.start. A search starting inside sp may then jump to clean.
	skipOK bool
}

// load makes the cursor describe the span containing instant x.
func (z *zoneCursor) load(x int64) {
	sp := spanAt(z.loc, x)
	z.sp, z.valid, z.clean, z.skipOK = sp, true, sp.wallStart(), false
	if sp.start == math.MinInt64 {
		return
	}
	// Earlier spans whose readings reach into sp's range make those readings unclean
	// (fall-back: they fire at their first occurrence, in the earlier span). Offsets are
	// bounded, so only spans ending shortly before sp can matter.
	prev := spanAt(z.loc, sp.start-1)
	for p, i := prev, 0; i < 8; i++ {
		if w := p.wallEnd(); w > z.clean {
			z.clean = w
		}
		if p.start == math.MinInt64 || p.start <= sp.start-2*lookaround {
			break
		}
		p = spanAt(z.loc, p.start-1)
	}
	z.skipOK = prev.wallStart() <= sp.wallStart() && prev.wallEnd() >= z.clean
}

// spanFor returns the span containing instant x, reusing the cache when it can.
func (z *zoneCursor) spanFor(x int64) span {
	if !z.valid || x < z.sp.start || x >= z.sp.end {
		z.load(x)
	}
	return z.sp
}

// resolve maps wall seconds u to the instant that fires for it: the earliest instant
// whose wall clock reads u or, when no instant does (a spring-forward gap), the instant
// the gap ends. Afterwards the cursor describes the span of the returned instant.
func (z *zoneCursor) resolve(u int64) int64 {
	if z.valid && u >= z.clean && u < z.sp.wallEnd() {
		return u - z.sp.off
	}
	r := z.resolveSlow(u)
	z.load(r)
	return r
}

func (z *zoneCursor) resolveSlow(u int64) int64 {
	exact, gap := int64(math.MaxInt64), int64(math.MaxInt64)
	x := u - lookaround
	var prev span
	havePrev := false
	for i := 0; i < 32; i++ {
		sp := spanAt(z.loc, x)
		if t := u - sp.off; t >= sp.start && t < sp.end && t < exact {
			exact = t
		}
		// A transition jumping the wall clock over u: u's gap ends at sp.start.
		if havePrev && prev.wallEnd() <= u && u < sp.wallStart() && sp.start < gap {
			gap = sp.start
		}
		if sp.end == math.MaxInt64 || sp.end > u+lookaround {
			break
		}
		prev, havePrev, x = sp, true, sp.end
	}
	if exact != math.MaxInt64 {
		return exact
	}
	if gap != math.MaxInt64 {
		return gap
	}
	// Unreachable with real zone data; stay total rather than panic.
	return u - spanAt(z.loc, u).off
}

// dayEnd returns the first instant after t whose local date (in loc) differs from t's.
func dayEnd(t time.Time, loc *time.Location) time.Time {
	if e := dayEndSec(t.Unix(), loc); e > t.Unix() {
		return time.Unix(e, 0).In(loc)
	}
	return time.Unix(t.Unix()+1, 0).In(loc) // unreachable with sane zone data; guarantees progress
}

func dayEndSec(x int64, loc *time.Location) int64 {
	sp := spanAt(loc, x)
	day := floorDiv(x+sp.off, secondsPerDay)
	for i := 0; i < 32; i++ {
		cand := (day+1)*secondsPerDay - sp.off
		if cand < sp.end {
			return cand
		}
		// The date may change at the transition itself.
		next := spanAt(loc, sp.end)
		if floorDiv(sp.end+next.off, secondsPerDay) != day {
			return sp.end
		}
		sp = next
	}
	return (day+1)*secondsPerDay - sp.off
}
