package schedule

import (
	"math"
	"math/big"
	"time"
)

// MinEvery is the shortest interval @every accepts.
const MinEvery = 10 * time.Millisecond

// everyExpr fires at anchor + k*interval for every integer k: absolute time, so DST and
// the location do not matter.
type everyExpr struct{ d time.Duration }

func (e *everyExpr) String() string { return "@every " + e.d.String() }

func (e *everyExpr) Kind() Kind { return KindEvery }

func (e *everyExpr) newSeq(s *Schedule) sequence {
	q := &everySeq{iv: int64(e.d), loc: s.loc(), lower: minTime, upper: maxTime}
	switch {
	case !s.Start.IsZero():
		q.anchor = s.Start
	case !s.Anchor.IsZero():
		q.anchor = s.Anchor
	default:
		q.anchor = time.Unix(0, 0)
	}
	if !s.Start.IsZero() && s.Start.After(q.lower) {
		q.lower = s.Start
	}
	if !s.End.IsZero() && s.End.Before(q.upper) {
		q.upper = s.End
	}
	return q
}

var (
	minTime = time.Unix(minInstant, 0).UTC()
	maxTime = time.Unix(maxInstant, 999999999).UTC()
)

// everySeq computes occurrences by arithmetic on their index k, never by iteration.
type everySeq struct {
	iv           int64 // interval in nanoseconds
	anchor       time.Time
	lower, upper time.Time // inclusive bounds
	loc          *time.Location
}

var bigGiga = big.NewInt(1e9)

// index returns floor((t - anchor) / interval).
func (q *everySeq) index(t time.Time) int64 {
	if d := t.Sub(q.anchor); d != math.MinInt64 && d != math.MaxInt64 { // not saturated: exact
		k := int64(d) / q.iv
		if int64(d)%q.iv < 0 {
			k--
		}
		return k
	}
	// More than 292 years apart: exact arithmetic in big integers.
	ns := new(big.Int).Mul(big.NewInt(t.Unix()-q.anchor.Unix()), bigGiga)
	ns.Add(ns, big.NewInt(int64(t.Nanosecond()-q.anchor.Nanosecond())))
	k := new(big.Int).Div(ns, big.NewInt(q.iv)) // Euclidean: floor for a positive divisor
	return k.Int64()
}

// at returns anchor + k*interval.
func (q *everySeq) at(k int64) time.Time {
	if lim := math.MaxInt64 / q.iv; k >= -lim && k <= lim {
		return q.anchor.Add(time.Duration(k * q.iv)).In(q.loc)
	}
	ns := new(big.Int).Mul(big.NewInt(k), big.NewInt(q.iv))
	sec, rem := new(big.Int).DivMod(ns, bigGiga, new(big.Int))
	return time.Unix(q.anchor.Unix()+sec.Int64(), int64(q.anchor.Nanosecond())+rem.Int64()).In(q.loc)
}

func (q *everySeq) next(after time.Time) (time.Time, bool) {
	if after.Before(q.lower) {
		after = q.lower.Add(-1)
	}
	if !after.Before(q.upper) {
		return time.Time{}, false
	}
	t := q.at(q.index(after) + 1)
	if t.After(q.upper) || !t.After(after) { // the latter only for anchors billions of years away
		return time.Time{}, false
	}
	return t, true
}

func (q *everySeq) count(from, to time.Time) (int64, time.Time) {
	first, ok := q.next(from.Add(-1))
	if !ok || first.After(to) {
		return 0, time.Time{}
	}
	if to.After(q.upper) {
		to = q.upper
	}
	kl := q.index(to)
	return kl - q.index(first) + 1, q.at(kl)
}

func (q *everySeq) nth(from time.Time, k int64) (time.Time, bool) {
	first, ok := q.next(from.Add(-1))
	if !ok {
		return time.Time{}, false
	}
	t := q.at(q.index(first) + k - 1)
	if t.After(q.upper) {
		return time.Time{}, false
	}
	return t, true
}

// atExpr fires once, at t.
type atExpr struct{ t time.Time }

func (e *atExpr) String() string { return "at " + e.t.UTC().Format(time.RFC3339Nano) }

func (e *atExpr) Kind() Kind { return KindAt }

func (e *atExpr) newSeq(s *Schedule) sequence {
	ok := (s.Start.IsZero() || !e.t.Before(s.Start)) && (s.End.IsZero() || !e.t.After(s.End))
	return &atSeq{t: e.t.In(s.loc()), ok: ok}
}

type atSeq struct {
	t  time.Time
	ok bool // within the schedule's bounds
}

func (q *atSeq) next(after time.Time) (time.Time, bool) {
	if !q.ok || !q.t.After(after) {
		return time.Time{}, false
	}
	return q.t, true
}

func (q *atSeq) count(from, to time.Time) (int64, time.Time) {
	if !q.ok || q.t.Before(from) || q.t.After(to) {
		return 0, time.Time{}
	}
	return 1, q.t
}

func (q *atSeq) nth(from time.Time, k int64) (time.Time, bool) {
	if k != 1 || !q.ok || q.t.Before(from) {
		return time.Time{}, false
	}
	return q.t, true
}
