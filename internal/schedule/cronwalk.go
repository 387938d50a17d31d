package schedule

import "time"

// Walking a cron expression's occurrences. Both DST rules (package doc) search matching
// wall readings in increasing order with nextWall; they differ in how a reading becomes an
// instant:
//   - fixed-time: through zoneCursor.resolve, so a reading fires once, at its first
//     instant or at the end of the gap that swallowed it;
//   - interval: one zone period at a time, each of whose wall ranges maps one-to-one
//     onto its instants, so only readings that exist fire, and a repeated stretch fires
//     in each period that shows it.

// searchDays bounds every cron search: about ten years of civil days.
const searchDays = 3660

// cronIter walks occurrences in unix seconds. Bounds are inclusive.
type cronIter struct {
	c            *cronExpr
	fixed        bool // c.fixedTime(), cached: it picks the DST rule
	z            zoneCursor
	lower, upper int64 // first and last second an occurrence may fall on
}

func newCronIter(c *cronExpr, s *Schedule) cronIter {
	it := cronIter{c: c, fixed: c.fixedTime(), z: zoneCursor{loc: s.loc()}, lower: minInstant, upper: maxInstant}
	if !s.Start.IsZero() {
		it.lower = max(it.lower, ceilSec(s.Start))
	}
	if !s.End.IsZero() {
		it.upper = min(it.upper, s.End.Unix())
	}
	return it
}

func ceilSec(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

// nextWall returns the first matching wall reading at or after u (wall seconds) whose
// civil day is at most lastDay.
func (c *cronExpr) nextWall(u, lastDay int64) (int64, bool) {
	day := floorDiv(u, secondsPerDay)
	tod := int(u - day*secondsPerDay)
	y, m, d := civilFromDays(day)
	for day <= lastDay && y <= 9999 {
		ml := monthLen(y, m)
		if c.month&(1<<m) == 0 {
			day, d = day+int64(ml-d+1), ml+1 // skip the month
		} else {
			if c.dayMatches(y, m, d, weekdayOf(day), ml) {
				if t, ok := c.nextTOD(tod); ok {
					return day*secondsPerDay + int64(t), true
				}
			}
			day, d = day+1, d+1
		}
		tod = 0
		if d > ml {
			d, m = 1, m+1
			if m > 12 {
				m, y = 1, y+1
			}
		}
	}
	return 0, false
}

// next returns the first occurrence after the instant `after` (seconds; any fraction of a
// second already dropped, which is exact since occurrences are whole seconds).
func (it *cronIter) next(after int64) (int64, bool) {
	after = max(after, it.lower-1)
	if after >= it.upper {
		return 0, false
	}
	if it.fixed {
		return it.nextFixed(after)
	}
	return it.nextInterval(after)
}

// nextFixed resolves each matching wall reading to the instant that fires for it.
func (it *cronIter) nextFixed(after int64) (int64, bool) {
	sp := it.z.spanFor(after)
	from := after + sp.off + 1 // wall readings before after's do not map past it
	if it.z.skipOK && from < it.z.clean {
		// after is in a repeated (fall-back) stretch: those readings fired in its first pass.
		from = it.z.clean
	}
	lastDay := floorDiv(from, secondsPerDay) + searchDays
	for u := from; ; {
		w, ok := it.c.nextWall(u, lastDay)
		if !ok {
			return 0, false
		}
		x := it.z.resolve(w)
		if x > it.upper {
			return 0, false // instants grow with wall readings
		}
		if x > after {
			return x, true
		}
		u = w + 1
	}
}

// nextInterval searches zone periods in turn, from the one holding after+1, for the first
// matching reading the period shows. A gap's readings belong to no period; a repeated
// stretch belongs to two. Afterwards the cursor describes the period of the result.
func (it *cronIter) nextInterval(after int64) (int64, bool) {
	x := after + 1
	lastDay := floorDiv(x+it.z.spanFor(x).off, secondsPerDay) + searchDays
	for x <= it.upper {
		sp := it.z.spanFor(x)
		end := sp.wallEnd() // exclusive
		spanLastDay := floorDiv(end-1, secondsPerDay)
		if w, ok := it.c.nextWall(x+sp.off, min(lastDay, spanLastDay)); ok && w < end {
			if r := w - sp.off; r <= it.upper {
				return r, true
			}
			return 0, false
		}
		if spanLastDay >= lastDay {
			return 0, false // searched as far as allowed
		}
		x = sp.end
	}
	return 0, false
}

// dayRest describes the rest of x's civil day when it can be counted arithmetically: an
// interval expression whose day matches, with the readings after x's up to the day's end
// (or the end of x's zone period, if sooner) mapped one-to-one onto instants. It returns
// the day's first wall second, x's time of day, the last time of day that is shown by the
// period and whose instant is <= lim, and the period's offset. Fixed-time expressions
// match once a day: nothing is left to count.
func (it *cronIter) dayRest(x, lim int64) (base int64, tod, lastTOD int, off int64, ok bool) {
	sp := it.z.sp
	if it.fixed || !it.z.valid || x < sp.start || x >= sp.end {
		return 0, 0, 0, 0, false
	}
	w := x + sp.off
	day := floorDiv(w, secondsPerDay)
	base = day * secondsPerDay
	y, m, d := civilFromDays(day)
	if it.c.month&(1<<m) == 0 || !it.c.dayMatches(y, m, d, weekdayOf(day), monthLen(y, m)) {
		return 0, 0, 0, 0, false
	}
	last := min(lim+sp.off, base+secondsPerDay-1, sp.wallEnd()-1)
	return base, int(w - base), int(last - base), sp.off, true
}

// count returns the number of occurrences in [from, to] and the last of them.
func (it *cronIter) count(from, to int64) (n, last int64) {
	lim := min(to, it.upper)
	x, ok := it.next(from - 1)
	for ok && x <= lim {
		n, last = n+1, x
		if base, tod, lt, off, ok := it.dayRest(x, lim); ok && lt > tod {
			if k := it.c.countTOD(tod+1, lt); k > 0 {
				t, _ := it.c.prevTOD(lt)
				n, last = n+k, base+int64(t)-off
			}
		}
		x, ok = it.next(last)
	}
	return n, last
}

// nth returns the k-th (k >= 1) occurrence at or after from.
func (it *cronIter) nth(from, k int64) (int64, bool) {
	x, ok := it.next(from - 1)
	for ok {
		if k == 1 {
			return x, true
		}
		k--
		last := x
		if base, tod, lt, off, ok := it.dayRest(x, it.upper); ok && lt > tod {
			if avail := it.c.countTOD(tod+1, lt); avail >= k {
				return base + int64(it.c.nthTOD(tod+1, k)) - off, true
			} else if avail > 0 {
				t, _ := it.c.prevTOD(lt)
				k, last = k-avail, base+int64(t)-off
			}
		}
		x, ok = it.next(last)
	}
	return 0, false
}

// cronSeq adapts cronIter to the sequence interface.
type cronSeq struct {
	it  cronIter
	loc *time.Location
}

func (q *cronSeq) at(x int64) time.Time { return time.Unix(x, 0).In(q.loc) }

func (q *cronSeq) next(after time.Time) (time.Time, bool) {
	a := after.Unix() // floor: occurrences are whole seconds
	if a >= maxInstant {
		return time.Time{}, false
	}
	x, ok := q.it.next(a)
	if !ok {
		return time.Time{}, false
	}
	return q.at(x), true
}

func (q *cronSeq) count(from, to time.Time) (int64, time.Time) {
	if to.Before(from) {
		return 0, time.Time{}
	}
	n, last := q.it.count(max(ceilSec(from), minInstant), min(to.Unix(), maxInstant))
	if n == 0 {
		return 0, time.Time{}
	}
	return n, q.at(last)
}

func (q *cronSeq) nth(from time.Time, k int64) (time.Time, bool) {
	x, ok := q.it.nth(max(ceilSec(from), minInstant), k)
	if !ok {
		return time.Time{}, false
	}
	return q.at(x), true
}
