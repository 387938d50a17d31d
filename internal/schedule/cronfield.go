package schedule

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Parsing and canonical rendering of single cron fields.

type fieldKind int

const (
	fSecond fieldKind = iota
	fMinute
	fHour
	fDom
	fMonth
	fDow
)

type fieldSpec struct {
	name     string
	min, max int // values accepted
	starMax  int // highest value * and a/n reach: day-of-week 7 is only an alias of Sunday
	names    []string
	nameBase int // value of names[0]
}

var fieldSpecs = [...]fieldSpec{
	fSecond: {name: "second", min: 0, max: 59, starMax: 59},
	fMinute: {name: "minute", min: 0, max: 59, starMax: 59},
	fHour:   {name: "hour", min: 0, max: 23, starMax: 23},
	fDom:    {name: "day-of-month", min: 1, max: 31, starMax: 31},
	fMonth: {name: "month", min: 1, max: 12, starMax: 12, nameBase: 1,
		names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	fDow: {name: "day-of-week", min: 0, max: 7, starMax: 6,
		names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}},
}

func (f *fieldSpec) allowed() string {
	s := fmt.Sprintf("%d-%d", f.min, f.max)
	if f.names != nil {
		s += " or " + f.names[0] + "-" + f.names[len(f.names)-1]
	}
	return s
}

// fieldValue is one parsed field. Only day-of-month uses last/w/lw and only day-of-week
// uses dowLast/nth.
type fieldValue struct {
	bits    uint64
	star    bool // written as exactly * or ?: unrestricted, for the day-of-month/day-of-week rule
	last    uint32
	w       uint32
	lw      bool
	dowLast uint8
	nth     [7]uint8
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// value parses a number or (for month and day-of-week) a three-letter name.
func (f *fieldSpec) value(s string) (int, string) {
	if s == "" {
		return 0, "missing value; allowed " + f.allowed()
	}
	if isDigits(s) {
		n, err := strconv.Atoi(s)
		if err != nil || len(s) > 6 || n < f.min || n > f.max {
			hint := ""
			if f.name == "day-of-week" {
				hint = " (0 and 7 are Sunday)"
			}
			return 0, fmt.Sprintf("value %s out of range %s%s", s, f.allowed(), hint)
		}
		return n, ""
	}
	for i, name := range f.names {
		if strings.EqualFold(s, name) {
			return i + f.nameBase, ""
		}
	}
	if f.names != nil {
		return 0, fmt.Sprintf("unknown value %q; use %s", s, f.allowed())
	}
	return 0, fmt.Sprintf("%q is not a number; allowed %s", s, f.allowed())
}

// number parses a plain bounded number (steps, offsets, occurrence counts).
func number(s, what string, lo, hi int) (int, string) {
	n, err := strconv.Atoi(s)
	if !isDigits(s) || err != nil || len(s) > 6 {
		return 0, fmt.Sprintf("%s %q is not a number", what, s)
	}
	if n < lo || n > hi {
		return 0, fmt.Sprintf("%s %d out of range %d-%d", what, n, lo, hi)
	}
	return n, ""
}

func parseField(k fieldKind, text string) (fieldValue, string) {
	var fv fieldValue
	f := &fieldSpecs[k]
	if text == "*" || text == "?" {
		if text == "?" && k != fDom && k != fDow {
			return fv, "? is only allowed in day-of-month and day-of-week; use *"
		}
		fv.star = true
		fv.bits = rangeBits(f.min, f.starMax, 1)
		return fv, ""
	}
	for _, elem := range strings.Split(text, ",") {
		if elem == "" {
			return fv, "empty list element (stray comma)"
		}
		if p := parseElem(k, elem, &fv); p != "" {
			return fv, p
		}
	}
	if k == fDow && fv.bits&(1<<7) != 0 {
		fv.bits = fv.bits&^(1<<7) | 1 // 7 is Sunday
	}
	return fv, ""
}

func rangeBits(lo, hi, step int) uint64 {
	var b uint64
	for v := lo; v <= hi; v += step {
		b |= 1 << uint(v)
	}
	return b
}

func parseElem(k fieldKind, orig string, fv *fieldValue) string {
	f := &fieldSpecs[k]
	e := strings.ToUpper(orig)
	switch k {
	case fDom:
		switch {
		case e == "L":
			fv.last |= 1
			return ""
		case e == "LW":
			fv.lw = true
			return ""
		case strings.HasPrefix(e, "L-"):
			n, p := number(e[2:], "offset", 0, 30)
			if p != "" {
				return fmt.Sprintf("%s in %q (L-n is n days before the last day of the month)", p, orig)
			}
			fv.last |= 1 << uint(n)
			return ""
		case strings.HasSuffix(e, "W"):
			n, p := number(e[:len(e)-1], "day", 1, 31)
			if p != "" {
				return fmt.Sprintf("%s in %q (nW is the weekday nearest day n, e.g. 15W; LW the last weekday)", p, orig)
			}
			fv.w |= 1 << uint(n)
			return ""
		}
	case fDow:
		if x, ns, ok := strings.Cut(e, "#"); ok {
			day, p := f.value(x)
			n := 0
			if p == "" {
				n, p = number(ns, "occurrence", 1, 5)
			}
			if p != "" {
				return fmt.Sprintf("%s in %q (x#n is the n-th x-day of the month, e.g. MON#2)", p, orig)
			}
			fv.nth[day%7] |= 1 << uint(n)
			return ""
		}
		if e == "L" {
			return "L in day-of-week needs a weekday before it, e.g. 5L or FRIL (last Friday of the month)"
		}
		if strings.HasSuffix(e, "L") {
			day, p := f.value(e[:len(e)-1])
			if p != "" {
				return fmt.Sprintf("%s in %q (xL is the last x-day of the month, e.g. 5L or FRIL)", p, orig)
			}
			fv.dowLast |= 1 << uint(day%7)
			return ""
		}
	default:
		if strings.ContainsAny(e, "#?") || e == "L" || strings.HasPrefix(e, "L-") || e == "LW" {
			return fmt.Sprintf("%q: ?, L, W and # are only allowed in day-of-month and day-of-week", orig)
		}
	}

	base, stepText, hasStep := strings.Cut(orig, "/")
	var lo, hi int
	switch base {
	case "*", "?":
		if base == "?" && k != fDom && k != fDow {
			return "? is only allowed in day-of-month and day-of-week; use *"
		}
		lo, hi = f.min, f.starMax
	default:
		a, b, isRange := strings.Cut(base, "-")
		var p string
		if lo, p = f.value(a); p != "" {
			return p
		}
		switch {
		case isRange:
			if hi, p = f.value(b); p != "" {
				return p
			}
			if lo > hi {
				if k == fDow && hi == 0 {
					hi = 7 // e.g. FRI-SUN: Sunday as the end of a week
				} else {
					return fmt.Sprintf("range %q is backwards: its start must not be after its end", base)
				}
			}
		case hasStep:
			hi = max(f.starMax, lo) // a/n means a through the end of the field
		default:
			hi = lo
		}
	}
	step := 1
	if hasStep {
		var p string
		if step, p = number(stepText, "step", 1, f.max-f.min+1); p != "" {
			return fmt.Sprintf("%s (the step after / must be 1-%d)", p, f.max-f.min+1)
		}
	}
	fv.bits |= rangeBits(lo, hi, step)
	return ""
}

// renderSet writes a value set canonically: a step form when the set is an arithmetic
// progression of three or more values, otherwise a list of runs ("a-b" for runs of three
// or more). The output re-parses to the same set.
func renderSet(set uint64, min, starMax int) string {
	var vals []int
	for s := set; s != 0; s &= s - 1 {
		vals = append(vals, bits.TrailingZeros64(s))
	}
	if len(vals) == 0 {
		return ""
	}
	if len(vals) >= 3 {
		d := vals[1] - vals[0]
		ap := d >= 2
		for i := 2; ap && i < len(vals); i++ {
			ap = vals[i]-vals[i-1] == d
		}
		if ap {
			last := vals[len(vals)-1]
			if vals[0] == min && last+d > starMax {
				return fmt.Sprintf("*/%d", d)
			}
			return fmt.Sprintf("%d-%d/%d", vals[0], last, d)
		}
	}
	var parts []string
	for i := 0; i < len(vals); {
		j := i
		for j+1 < len(vals) && vals[j+1] == vals[j]+1 {
			j++
		}
		if j-i >= 2 {
			parts = append(parts, fmt.Sprintf("%d-%d", vals[i], vals[j]))
		} else {
			for x := i; x <= j; x++ {
				parts = append(parts, strconv.Itoa(vals[x]))
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
