package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tandemhq/tandem/internal/store"
)

// Sync is what CheckSync judges: a sync source's change log and its DR site's,
// the source sequence streaming started after (the full sync's, or 0) and the DR
// site's cursor at the end.
type Sync struct {
	Source []store.Change
	Target []store.Change
	From   int64
	Cursor int64
	// Sent says which entities the source sends (nil: jobs, rules and settings).
	Sent func(entity string) bool
	// Open, if set, decrypts a secret's ciphertext with the source's key (target
	// false) or the DR site's (target true), for the sync-secret rule.
	Open func(target bool, name string, ciphertext []byte) (string, error)
}

// CheckSync judges a DR site's applied changes against its source's log. Rules:
// sync-order (a source change applied after a later one, or twice), sync-lost (a sent
// source change at or below the cursor the DR site never applied), sync-extra (an
// applied change the source never made), sync-mismatch (applied under another
// operation, entity or name than the source's), sync-secret (a secret the DR site
// stored with the source's ciphertext, not sealed again with its own key, or, with
// Open, whose value differs from the source's or that its own key cannot open).
func CheckSync(h Sync) []Violation {
	sent := h.Sent
	if sent == nil {
		sent = func(e string) bool { return e == store.EntityJob || e == store.EntityRule || e == store.EntitySetting }
	}
	var out []Violation
	add := func(rule, format string, args ...any) {
		out = append(out, Violation{Rule: rule, Detail: fmt.Sprintf(format, args...)})
	}
	src := map[int64]store.Change{}
	for _, c := range h.Source {
		src[c.Seq] = c
	}
	applied := map[int64]bool{}
	last := h.From
	for _, c := range h.Target {
		if c.SourceSeq <= h.From {
			continue
		}
		if c.SourceSeq <= last {
			add("sync-order", "source change %d (%s) applied after source change %d", c.SourceSeq, describe(c), last)
		}
		last = max(last, c.SourceSeq)
		applied[c.SourceSeq] = true
		s, ok := src[c.SourceSeq]
		switch {
		case !ok:
			add("sync-extra", "the DR site applied source change %d (%s), which the source's log does not have", c.SourceSeq, describe(c))
		case s.Op != c.Op || s.Entity != c.Entity || s.Key != c.Key:
			add("sync-mismatch", "source change %d is %s on the source, %s on the DR site", c.SourceSeq, describe(s), describe(c))
		case c.Entity == store.EntitySecret && c.Op == store.OpApply:
			if why := secretSynced(h.Open, s, c); why != "" {
				add("sync-secret", "source change %d (%s): %s", c.SourceSeq, describe(c), why)
			}
		}
	}
	var lost []string
	for _, c := range h.Source {
		if c.Seq > h.From && c.Seq <= h.Cursor && sent(c.Entity) && !applied[c.Seq] {
			lost = append(lost, fmt.Sprintf("%d (%s)", c.Seq, describe(c)))
		}
	}
	if len(lost) > 0 {
		add("sync-lost", "%d source changes at or below the DR site's cursor %d were never applied: %s", len(lost), h.Cursor, strings.Join(lost, ", "))
	}
	return out
}

func describe(c store.Change) string { return c.Op + " " + c.Entity + " " + c.Key }

// secretSynced says what is wrong with a secret's change src as the DR site applied
// it (dst); "" when nothing is.
func secretSynced(open func(bool, string, []byte) (string, error), src, dst store.Change) string {
	var a, b store.ChangeSecret
	if json.Unmarshal(src.Def, &a) != nil || json.Unmarshal(dst.Def, &b) != nil || len(b.Ciphertext) == 0 {
		return fmt.Sprintf("definitions do not decode as secrets: %s on the source, %s on the DR site", src.Def, dst.Def)
	}
	if bytes.Equal(a.Ciphertext, b.Ciphertext) {
		return "the DR site stored the source's ciphertext: it was not sealed again with the DR site's key"
	}
	if open == nil {
		return ""
	}
	want, err := open(false, src.Key, a.Ciphertext)
	if err != nil {
		return "the source's key does not open the source's ciphertext: " + err.Error()
	}
	got, err := open(true, dst.Key, b.Ciphertext)
	switch {
	case err != nil:
		return "the DR site's key does not open what it stored: " + err.Error()
	case got != want:
		return "the DR site's value differs from the source's"
	}
	return ""
}
