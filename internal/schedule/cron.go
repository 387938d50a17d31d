package schedule

import (
	"fmt"
	"math/bits"
	"strings"
)

// cronExpr is a parsed cron expression as bit sets. It is comparable: two expressions
// are equivalent exactly when they are ==.
type cronExpr struct {
	sec, min uint64   // bits 0-59
	hour     uint32   // bits 0-23
	dom      uint32   // bits 1-31
	month    uint16   // bits 1-12
	dow      uint8    // bits 0-6, 0 = Sunday
	domStar  bool     // day-of-month written as * or ?
	dowStar  bool     // day-of-week written as * or ?
	domLast  uint32   // bit n: L-n (bit 0: L)
	domW     uint32   // bit n: nW
	domLW    bool     // LW
	dowLast  uint8    // bit x: last x-day of the month (xL)
	dowNth   [7]uint8 // dowNth[x] bit n: n-th x-day of the month (x#n)
}

func parseCron(fields []string) (*cronExpr, error) {
	kinds := []fieldKind{fMinute, fHour, fDom, fMonth, fDow}
	if len(fields) == 6 {
		kinds = append([]fieldKind{fSecond}, kinds...)
	}
	c := &cronExpr{sec: 1}
	for i, k := range kinds {
		fv, problem := parseField(k, fields[i])
		if problem != "" {
			return nil, &ParseError{Field: fieldSpecs[k].name, Value: fields[i], Problem: problem, pos: i + 1}
		}
		switch k {
		case fSecond:
			c.sec = fv.bits
		case fMinute:
			c.min = fv.bits
		case fHour:
			c.hour = uint32(fv.bits)
		case fDom:
			c.dom, c.domStar, c.domLast, c.domW, c.domLW = uint32(fv.bits), fv.star, fv.last, fv.w, fv.lw
		case fMonth:
			c.month = uint16(fv.bits)
		case fDow:
			c.dow, c.dowStar, c.dowLast, c.dowNth = uint8(fv.bits), fv.star, fv.dowLast, fv.nth
		}
	}
	if p := c.neverMatches(); p != "" {
		i := len(kinds) - 3
		return nil, &ParseError{Field: "day-of-month", Value: fields[i], Problem: p, pos: i + 1}
	}
	return c, nil
}

var monthNames = [...]string{"", "January", "February", "March", "April", "May", "June",
	"July", "August", "September", "October", "November", "December"}

// neverMatches explains why no real date can match, or returns "". Only day-of-month can
// make that happen: day-of-week always matches some day of every month.
func (c *cronExpr) neverMatches() string {
	if c.domStar || !c.dowStar {
		return "" // unrestricted, or ORed with a restricted day-of-week
	}
	longest := 0
	for m := 1; m <= 12; m++ {
		if c.month&(1<<m) == 0 {
			continue
		}
		ml := monthLen(2000, m) // 2000 is a leap year: the longest each month gets
		longest = max(longest, ml)
		if c.dom&(1<<(ml+1)-1) != 0 || c.domLast&(1<<ml-1) != 0 || c.domW&(1<<(ml+1)-1) != 0 || c.domLW {
			return ""
		}
	}
	if bits.OnesCount16(c.month) == 1 {
		m := bits.TrailingZeros16(c.month)
		return fmt.Sprintf("never matches: %s has at most %d days", monthNames[m], longest)
	}
	return fmt.Sprintf("never matches: none of the selected months has more than %d days", longest)
}

func (c *cronExpr) String() string {
	var f []string
	if c.sec != 1 {
		f = append(f, renderStar(c.sec, 0, 59))
	}
	f = append(f, renderStar(c.min, 0, 59), renderStar(uint64(c.hour), 0, 23))
	if c.domStar {
		f = append(f, "*")
	} else {
		var p []string
		if c.dom != 0 {
			p = append(p, renderSet(uint64(c.dom), 1, 31))
		}
		for n := 0; n <= 30; n++ {
			if c.domLast&(1<<n) != 0 {
				if n == 0 {
					p = append(p, "L")
				} else {
					p = append(p, fmt.Sprintf("L-%d", n))
				}
			}
		}
		for n := 1; n <= 31; n++ {
			if c.domW&(1<<n) != 0 {
				p = append(p, fmt.Sprintf("%dW", n))
			}
		}
		if c.domLW {
			p = append(p, "LW")
		}
		f = append(f, strings.Join(p, ","))
	}
	f = append(f, renderStar(uint64(c.month), 1, 12))
	if c.dowStar {
		f = append(f, "*")
	} else {
		var p []string
		if c.dow != 0 {
			p = append(p, renderSet(uint64(c.dow), 0, 6))
		}
		for x := 0; x < 7; x++ {
			if c.dowLast&(1<<x) != 0 {
				p = append(p, fmt.Sprintf("%dL", x))
			}
		}
		for x := 0; x < 7; x++ {
			for n := 1; n <= 5; n++ {
				if c.dowNth[x]&(1<<n) != 0 {
					p = append(p, fmt.Sprintf("%d#%d", x, n))
				}
			}
		}
		f = append(f, strings.Join(p, ","))
	}
	return strings.Join(f, " ")
}

// renderStar renders fields without * semantics: the full set is simply *.
func renderStar(set uint64, lo, hi int) string {
	if set == rangeBits(lo, hi, 1) {
		return "*"
	}
	return renderSet(set, lo, hi)
}

func (c *cronExpr) newSeq(s *Schedule) sequence {
	return &cronSeq{it: newCronIter(c, s), loc: s.loc()}
}

// fixedTime reports whether the expression names one time of day (a single second,
// minute and hour), which decides its DST rule: see the package doc. It looks at the
// value sets, not the text, so "*/60" (only minute 0) is as fixed as "0", and the
// canonical String keeps the kind.
func (c *cronExpr) fixedTime() bool {
	return bits.OnesCount64(c.sec) == 1 && bits.OnesCount64(c.min) == 1 && bits.OnesCount32(c.hour) == 1
}

func (c *cronExpr) Kind() Kind {
	if c.fixedTime() {
		return KindFixedTime
	}
	return KindInterval
}

// dayMatches reports whether day d of month m of year y matches the day fields; wd is its
// weekday and ml the month's length.
func (c *cronExpr) dayMatches(y int64, m, d, wd, ml int) bool {
	domOK := c.dom&(1<<d) != 0 || c.domLast&(1<<(ml-d)) != 0
	if !domOK && (c.domW != 0 || c.domLW) {
		first := (wd - (d-1)%7 + 7) % 7 // weekday of the 1st
		if c.domLW && d == nearestWeekday(ml, ml, first) {
			domOK = true
		}
		for w := c.domW; w != 0 && !domOK; w &= w - 1 {
			n := bits.TrailingZeros32(w)
			domOK = n <= ml && d == nearestWeekday(n, ml, first)
		}
	}
	dowOK := c.dow&(1<<wd) != 0 || (c.dowLast&(1<<wd) != 0 && d+7 > ml) ||
		c.dowNth[wd]&(1<<((d-1)/7+1)) != 0
	if c.domStar || c.dowStar {
		return domOK && dowOK
	}
	return domOK || dowOK // Vixie: both restricted means either may match
}

// nearestWeekday returns the Monday-to-Friday day nearest day n of a month of ml days
// whose 1st has weekday first, without leaving the month.
func nearestWeekday(n, ml, first int) int {
	switch (first + n - 1) % 7 {
	case 6: // Saturday: Friday before, or Monday after when n is the 1st
		if n == 1 {
			return 3
		}
		return n - 1
	case 0: // Sunday: Monday after, or Friday before when n is the last day
		if n == ml {
			return n - 2
		}
		return n + 1
	}
	return n
}

func nextBit(set uint64, from int) int {
	if from >= 64 {
		return -1
	}
	x := set & (^uint64(0) << uint(from))
	if x == 0 {
		return -1
	}
	return bits.TrailingZeros64(x)
}

func prevBit(set uint64, from int) int {
	if from < 0 {
		return -1
	}
	if from < 63 {
		set &= 1<<uint(from+1) - 1
	}
	return bits.Len64(set) - 1
}

// nextTOD returns the first matching time of day (seconds) at or after tod.
func (c *cronExpr) nextTOD(tod int) (int, bool) {
	if tod < 0 {
		tod = 0
	}
	h, m, s := tod/3600, tod/60%60, tod%60
	for h < 24 {
		if nh := nextBit(uint64(c.hour), h); nh != h {
			if nh < 0 {
				return 0, false
			}
			h, m, s = nh, 0, 0
		}
		nm := nextBit(c.min, m)
		if nm < 0 {
			h, m, s = h+1, 0, 0
			continue
		}
		if nm != m {
			m, s = nm, 0
		}
		ns := nextBit(c.sec, s)
		if ns < 0 {
			m, s = m+1, 0
			if m == 60 {
				h, m = h+1, 0
			}
			continue
		}
		return h*3600 + m*60 + ns, true
	}
	return 0, false
}

// prevTOD returns the last matching time of day at or before tod.
func (c *cronExpr) prevTOD(tod int) (int, bool) {
	if tod >= secondsPerDay {
		tod = secondsPerDay - 1
	}
	if tod < 0 {
		return 0, false
	}
	h, m, s := tod/3600, tod/60%60, tod%60
	for h >= 0 {
		if ph := prevBit(uint64(c.hour), h); ph != h {
			if ph < 0 {
				return 0, false
			}
			h, m, s = ph, 59, 59
		}
		pm := prevBit(c.min, m)
		if pm < 0 {
			h, m, s = h-1, 59, 59
			continue
		}
		if pm != m {
			m, s = pm, 59
		}
		ps := prevBit(c.sec, s)
		if ps < 0 {
			m, s = m-1, 59
			if m < 0 {
				h, m = h-1, 59
			}
			continue
		}
		return h*3600 + m*60 + ps, true
	}
	return 0, false
}

// countFrom returns how many matching times of day are at or after tod.
func (c *cronExpr) countFrom(tod int) int64 {
	if tod >= secondsPerDay {
		return 0
	}
	if tod < 0 {
		tod = 0
	}
	h, m, s := tod/3600, tod/60%60, tod%60
	ns := int64(bits.OnesCount64(c.sec))
	nm := int64(bits.OnesCount64(c.min))
	n := int64(bits.OnesCount64(uint64(c.hour)&(^uint64(0)<<uint(h+1)))) * nm * ns
	if c.hour&(1<<h) != 0 {
		n += int64(bits.OnesCount64(c.min&(^uint64(0)<<uint(m+1)))) * ns
		if c.min&(1<<m) != 0 {
			n += int64(bits.OnesCount64(c.sec & (^uint64(0) << uint(s))))
		}
	}
	return n
}

// countTOD returns how many matching times of day lie in [a, b].
func (c *cronExpr) countTOD(a, b int) int64 {
	if b < a {
		return 0
	}
	return c.countFrom(a) - c.countFrom(b+1)
}

// nthTOD returns the k-th (k >= 1) matching time of day at or after from; the caller
// ensures it exists. Binary search over the O(1) count.
func (c *cronExpr) nthTOD(from int, k int64) int {
	lo, hi := from, secondsPerDay-1
	for lo < hi {
		mid := (lo + hi) / 2
		if c.countTOD(from, mid) >= k {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
