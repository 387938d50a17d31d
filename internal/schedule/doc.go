// Package schedule owns tandem's schedule semantics: parsing schedule expressions and
// blackout calendars, computing occurrences, and planning what to do with due ones. It
// is pure: no I/O, no goroutines, no global mutable state, no clock reads.
//
// # Expressions
//
// ParseExpr accepts cron with 5 fields (minute hour day-of-month month day-of-week) or 6
// (second first); the macros @yearly (@annually), @monthly, @weekly, @daily (@midnight)
// and @hourly; "@every <Go duration>" (at least MinEvery); and "at <RFC 3339 time>", a
// one-off. Cron fields take *, numbers, a-b, */n, a-b/n, a/n, lists, JAN-DEC and SUN-SAT;
// day-of-week 0 and 7 are Sunday; ? equals * in day-of-month and day-of-week.
// Day-of-month also takes L (last day), L-n (n days before it), nW (the weekday nearest
// day n, within the month) and LW (last weekday); day-of-week takes xL (last x-day of the
// month) and x#n (n-th x-day, n 1-5). As in Vixie cron, when day-of-month and
// day-of-week are both restricted (neither is written as exactly * or ?) a day matches if
// either does; otherwise both must. An expression that can never match a real date is an
// error.
//
// # Occurrences and DST
//
// Schedule.Next(after) returns the first occurrence strictly after `after`, within
// [Start, End]. It is deterministic and bounded: a cron search gives up after about ten
// years of civil days, and instants stay within years 0001-9999. @every occurrences are
// Anchor + k*interval, computed by arithmetic in absolute time (DST plays no part); an at
// expression fires once.
//
// Cron is evaluated on the wall clock of the schedule's Location, and its DST rule
// depends on its Kind, as in Vixie cron and cronie:
//   - A fixed-time expression has a single value in each of its second (0 when there are
//     five fields), minute and hour fields: 30 2 * * *, 0 0 7 * * MON-FRI, @daily,
//     @weekly, @monthly, @yearly. It names a time of day that a report is expected at. A
//     wall time that does not exist (spring-forward gap) fires once, at the instant the
//     gap ends, unless an existing wall time already fires at that instant; a wall time
//     that occurs twice (fall-back) fires once, at its first occurrence. No wall time
//     fires twice. So 30 2 * * * fires at 03:00 EDT on New York's spring-forward night,
//     and 30 1 * * * at 01:30 EDT only on its fall-back night.
//   - Every other cron expression (*, a step, a range or a list in any of those three
//     fields; @hourly) is an interval expression. Its occurrences are the real instants
//     whose wall reading matches: wall times inside a gap do not exist and do not fire
//     (there is no catch-up run when the gap ends), and wall times in a repeated stretch
//     fire on both passes, being different instants. So 15,45 * * * * goes from 01:45 EST
//     to 03:15 EDT on New York's spring-forward night, and * * * * * fires 120 times
//     between 01:00 EDT and 02:00 EST on its fall-back night.
//
// Either way results are strictly increasing. These rules hold for transitions at any
// time of day (including midnight, where a day starts at 01:00), of any size (30 minutes
// as on Lord Howe, or a whole skipped day as in Pacific/Apia on 2011-12-30), and with
// offsets of any minute (Pacific/Chatham's +12:45).
//
// # Blackouts and misfires
//
// A Calendar lists blackout dates, compared with an occurrence's local date in Location.
// Schedule.Plan classifies due occurrences. Its invariant: every occurrence from the
// planned next up to (excluding) Plan.Next is in exactly one of Plan.Fire, Plan.Missed
// and Plan.Skipped. Blacked-out occurrences are Skipped; occurrences late by at most
// Policy.Grace fire; later ones misfired and follow Policy.Misfire. Fire holds at most
// RunAllCap occurrences.
package schedule
