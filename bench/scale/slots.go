package main

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/chaos"
)

// firingSlot matches the log line of a node taking a scheduler slot.
var firingSlot = regexp.MustCompile(`^firing slot (\d+) of \d+ \(epoch \d+\)`)

// slotTakeover kills a slot holder (a, b, c in turn), measures how long until each of
// its slots fires again from another node, and brings the victim back; before the next
// trial the slots are spread again.
func (b *bencher) slotTakeover(ctx context.Context, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 3*stepTimeout)
	defer cancel()
	st, err := b.c.WaitSlotsSpread(ctx, b.slots)
	if err != nil {
		return err
	}
	nodes := b.c.Nodes()
	victim := nodes[(i-1)%len(nodes)]
	var mine []int
	for slot, holder := range chaos.SlotHolders(st) {
		if holder == victim.ID() {
			n, err := strconv.Atoi(slot)
			if err != nil {
				return fmt.Errorf("status shows slot %q", slot)
			}
			mine = append(mine, n)
		}
	}
	if len(mine) == 0 {
		return fmt.Errorf("%s holds no slot: %s", victim.ID(), chaos.FormatStatus(st))
	}
	slices.Sort(mine)
	wasPrimary := st.Primary == victim.ID()
	if wasPrimary {
		b.alsoPrimary++
	}
	lastRun, err := b.repo.lastRunID(ctx)
	if err != nil {
		return err
	}
	mark, t0 := b.c.Mark(), time.Now()
	if err := victim.Kill(); err != nil {
		return err
	}
	// Each slot's first firing created after the victim was reaped: the new holder's (a
	// run the victim planned after t0 committed before it died, so before dead).
	dead := time.Now()
	first := map[int]time.Time{}
	var seen time.Time
	err = chaos.Poll(ctx, 5*time.Millisecond, "a firing of each of the victim's slots", func(ctx context.Context) (bool, string, error) {
		for _, slot := range mine {
			if _, ok := first[slot]; ok {
				continue
			}
			at, err := b.repo.firstFiredInSlot(ctx, lastRun, b.slots, slot, dead)
			if err != nil {
				return false, "", err
			}
			if !at.IsZero() {
				first[slot] = at
			}
		}
		seen = time.Now()
		return len(first) == len(mine), fmt.Sprintf("%d of %d slots fired", len(first), len(mine)), nil
	})
	if err != nil {
		return err
	}
	took := seen.Sub(t0)
	var latest time.Time
	for _, at := range first {
		latest = later(latest, at)
	}
	byNode := latest.Sub(t0)
	var role time.Duration
	for range mine {
		l, err := b.c.WaitLog(ctx, mark, chaos.LogMatch{Pattern: firingSlot})
		if err != nil {
			return err
		}
		mark = l.Seq + 1
		role = max(role, l.At.Sub(t0))
	}
	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}
	var late []time.Duration
	for _, slot := range mine {
		l, err := b.repo.slotLateness(ctx, lastRun, b.slots, slot, dead, first[slot])
		if err != nil {
			return err
		}
		late = append(late, l...)
	}
	holders := map[string]bool{}
	if st, err := b.c.Status(ctx); err == nil {
		for _, slot := range mine {
			if h := chaos.SlotHolders(st)[strconv.Itoa(slot)]; h != "" {
				holders[h] = true
			}
		}
	}
	for id := range holders {
		if m, err := readMem(b.c.Node(id).PID()); err == nil {
			b.hwmNew = max(b.hwmNew, m.hwm)
		}
	}
	b.takeovers, b.roles, b.byNode = append(b.takeovers, took), append(b.roles, role), append(b.byNode, byNode)
	b.takeLate = append(b.takeLate, late...)
	also := ""
	if wasPrimary {
		also = " (the primary too)"
	}
	logf("%s takeover %d: kill -9 of %s%s holding slots %v; taken by %s after %s (log line), each slot's first firing seen committed after %s (created_at %s after); %d occurrences due meanwhile, latest %s late",
		b.label(), i, victim.ID(), also, mine, strings.Join(slices.Sorted(maps.Keys(holders)), ","), ms(role), ms(took), ms(byNode), len(late), ms(pct(late, 100)))
	if err := victim.Restart(ctx); err != nil {
		return err
	}
	if _, err := b.c.WaitMode(ctx, victim.ID(), "standby"); err != nil {
		return err
	}
	if _, err := b.c.WaitSlotsSpread(ctx, b.slots); err != nil {
		return err
	}
	return sleep(ctx, 3*time.Second)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
