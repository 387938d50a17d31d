package schedule

// Civil (proleptic Gregorian) calendar arithmetic on day numbers: days since 1970-01-01.
// The cron walk does its own date arithmetic because time.Date normalises and picks zones,
// and we need exact control of which wall readings exist.

const secondsPerDay = 86400

// Bounds of the instants this package produces: years 0001 to 9999 UTC, the range RFC 3339
// can write. Searches outside it give up rather than overflow.
const (
	minInstant = -62135596800 // 0001-01-01T00:00:00Z
	maxInstant = 253402300799 // 9999-12-31T23:59:59Z
)

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

// daysFromCivil returns the day number of y-m-d (m 1-12, d 1-31).
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400 // [0, 399]
	mp := int64((m + 9) % 12)
	doy := (153*mp+2)/5 + int64(d) - 1     // [0, 365]
	doe := yoe*365 + yoe/4 - yoe/100 + doy // [0, 146096]
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y int64, m, d int) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func isLeap(y int64) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func monthLen(y int64, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// weekdayOf returns the weekday of a day number, 0 = Sunday (1970-01-01 was a Thursday).
func weekdayOf(day int64) int { return int(floorMod(day+4, 7)) }
