package main

import (
	"fmt"
	"strings"

	"github.com/tandemhq/tandem/internal/config"
)

// summary is the cluster's figures on one line, against the targets.
func (b *bencher) summary() string {
	s := b.s
	hwm := max(b.hwmLoaded, b.hwmNew, b.hwmLoad)
	var missed []string
	check := func(ok bool, what string) {
		if !ok {
			missed = append(missed, what)
		}
	}
	check(hwm <= int64(targetRSS), "peak RSS")
	take, takeWhat := targetTakeover, "takeover (kill -9 of the primary to the first fenced firing seen committed)"
	if b.slots > 1 {
		take, takeWhat = targetSlotTakeover, fmt.Sprintf("slot takeover (kill -9 of a slot holder, %d of them the primary too, to the first firing of each of its slots seen committed)", b.alsoPrimary)
	}
	check(pct(b.takeovers, 99) <= take, "takeover p99")
	check(pct(b.lateness, 50) <= targetP50, "lateness p50")
	check(pct(b.lateness, 99) <= targetP99, "lateness p99")
	verdict := "all targets met"
	if len(missed) > 0 {
		verdict = "MISSED: " + strings.Join(missed, ", ")
	}
	role := "role taken (log line)"
	if b.slots > 1 {
		role = "slot taken (log line)"
	}
	return fmt.Sprintf("scale %s slots=%d: schedules=%d applied in %s (%d changes of primary meanwhile), all initialised %s later; any node's peak RSS after the load=%s; "+
		"largest node RSS (%s) median=%s last=%s, peak of any node while firing=%s, of the nodes that took over=%s; "+
		"lateness n=%d p50=%s p99=%s max=%s; %s n=%d median=%s p99=%s, by its created_at median=%s p99=%s, %s median=%s p99=%s; due during takeover n=%d lateness p50=%s p99=%s max=%s; "+
		"settings: %d sample @every %s spread + %d at spread instants every %s, batch %d, steady %s, 3 nodes, lease renew %s ttl %s, nodes built without -race, executor %s, load average %s at the end (the machine's, shared); "+
		"targets: peak RSS<=%s takeover p99<=%s lateness p50<=%s p99<=%s; %s",
		b.engine, b.slots, s.schedules, ms(b.loadTook), b.loadElections, ms(b.initTook), mb(b.hwmLoad), b.rssNode, mb(b.rssMedian), mb(b.rssLast), mb(b.hwmLoaded), mb(b.hwmNew),
		len(b.lateness), ms(pct(b.lateness, 50)), ms(pct(b.lateness, 99)), ms(pct(b.lateness, 100)),
		takeWhat, len(b.takeovers), ms(pct(b.takeovers, 50)), ms(pct(b.takeovers, 99)), ms(pct(b.byNode, 50)), ms(pct(b.byNode, 99)),
		role, ms(pct(b.roles, 50)), ms(pct(b.roles, 99)),
		len(b.takeLate), ms(pct(b.takeLate, 50)), ms(pct(b.takeLate, 99)), ms(pct(b.takeLate, 100)),
		s.sample, s.sampleEvery, s.schedules-s.sample, s.bulkPeriod, s.batch, s.steady, config.LeaseRenewDefault, config.LeaseTTLDefault,
		s.exec, loadavg(), mb(int64(targetRSS)), ms(take), ms(targetP50), ms(targetP99), verdict)
}

// table puts the clusters' main figures side by side, a row each.
func table(bs []*bencher) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-8s %5s %10s %8s %8s %10s %10s %10s %10s %10s\n", "engine", "slots", "schedules", "apply", "init",
		"RSS med", "RSS peak", "late p50", "late p99", "take p50/p99")
	for _, x := range bs {
		fmt.Fprintf(&b, "%-8s %5d %10d %8s %8s %10s %10s %10s %10s %s/%s\n", x.engine, x.slots, x.s.schedules,
			ms(x.loadTook), ms(x.initTook), mb(x.rssMedian), mb(max(x.hwmLoaded, x.hwmNew, x.hwmLoad)),
			ms(pct(x.lateness, 50)), ms(pct(x.lateness, 99)), ms(pct(x.takeovers, 50)), ms(pct(x.takeovers, 99)))
	}
	return b.String()
}
