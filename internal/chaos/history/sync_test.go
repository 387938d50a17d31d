package history

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/store"
)

func syncRules(vs []Violation) string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Rule)
	}
	return strings.Join(out, ",")
}

func TestCheckSync(t *testing.T) {
	t.Parallel()
	src := []store.Change{
		{Seq: 1, Entity: "job", Key: "a", Op: "apply"},
		{Seq: 2, Entity: "job", Key: "b", Op: "apply"},
		{Seq: 3, Entity: "secret", Key: "s", Op: "apply"}, // not sent
		{Seq: 4, Entity: "rule", Key: "r", Op: "apply"},
		{Seq: 5, Entity: "job", Key: "a", Op: "delete"},
	}
	at := func(seqs ...int64) []store.Change {
		var out []store.Change
		for i, s := range seqs {
			c := store.Change{Seq: int64(100 + i), SourceSeq: s}
			for _, x := range src {
				if x.Seq == s {
					c.Entity, c.Key, c.Op = x.Entity, x.Key, x.Op
				}
			}
			out = append(out, c)
		}
		return out
	}
	local := store.Change{Seq: 99, Entity: "job", Key: "local", Op: "apply"} // a change of the DR site's own
	cases := []struct {
		name   string
		target []store.Change
		from   int64
		cursor int64
		want   string
	}{
		{"clean", append([]store.Change{local}, at(1, 2, 4, 5)...), 0, 5, ""},
		{"clean after a full sync", at(2, 2, 4, 5), 2, 5, ""},
		{"behind the cursor is fine", at(1, 2), 0, 2, ""},
		{"duplicate", at(1, 2, 2, 4, 5), 0, 5, "sync-order"},
		{"reordered", at(1, 4, 2, 5), 0, 5, "sync-order"},
		{"lost", at(1, 4, 5), 0, 5, "sync-lost"},
		{"extra", append(at(1, 2, 4, 5), store.Change{Seq: 200, SourceSeq: 9, Entity: "job", Key: "x", Op: "apply"}), 0, 9, "sync-extra"},
	}
	for _, c := range cases {
		got := syncRules(CheckSync(Sync{Source: src, Target: c.target, From: c.from, Cursor: c.cursor}))
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	mm := at(1, 2, 4, 5)
	mm[1].Key = "other"
	if got := syncRules(CheckSync(Sync{Source: src, Target: mm, Cursor: 5})); got != "sync-mismatch" {
		t.Errorf("mismatch: %q", got)
	}
}

func TestCheckSyncSecrets(t *testing.T) {
	t.Parallel()
	def := func(ct ...byte) []byte {
		b, _ := json.Marshal(store.ChangeSecret{Version: 1, Ciphertext: ct})
		return b
	}
	// A toy pair of keys: the source's ciphertexts start with 's', the DR site's with 'd'.
	open := func(target bool, _ string, ct []byte) (string, error) {
		if len(ct) == 0 || (ct[0] == 'd') != target {
			return "", errors.New("not this site's key")
		}
		return string(ct[1:]), nil
	}
	src := []store.Change{{Seq: 1, Entity: "secret", Key: "db", Op: "apply", Def: def('s', 'p', 'w')}}
	sent := func(string) bool { return true }
	cases := []struct {
		name string
		ct   []byte
		open func(bool, string, []byte) (string, error)
		want string
	}{
		{"sealed again", []byte("dpw"), open, ""},
		{"sealed again, no key to check with", []byte("dpw"), nil, ""},
		{"the source's ciphertext", []byte("spw"), nil, "sync-secret"},
		{"another value", []byte("dxx"), open, "sync-secret"},
		{"not the DR site's key", []byte("xpw"), open, "sync-secret"},
		{"no ciphertext", nil, nil, "sync-secret"},
	}
	for _, c := range cases {
		dst := []store.Change{{Seq: 10, SourceSeq: 1, Entity: "secret", Key: "db", Op: "apply", Def: def(c.ct...)}}
		if got := syncRules(CheckSync(Sync{Source: src, Target: dst, Cursor: 1, Sent: sent, Open: c.open})); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// Check with Job.Sync judges the DR site's log by CheckSync's rules and counts the
// changes applied after the full sync (the soak's site-sync report).
func TestCheckJudgesTheSync(t *testing.T) {
	t.Parallel()
	src := []store.Change{{Seq: 1, Entity: "job", Key: "a", Op: "apply"}, {Seq: 2, Entity: "job", Key: "a", Op: "delete"}, {Seq: 3, Entity: "job", Key: "b", Op: "apply"}}
	applied := func(seqs ...int64) []store.Change {
		var out []store.Change
		for i, s := range seqs {
			c := src[s-1]
			out = append(out, store.Change{Seq: int64(10 + i), SourceSeq: s, Entity: c.Entity, Key: c.Key, Op: c.Op})
		}
		return out
	}
	rep := Check(Job{Sync: &Sync{Source: src, Target: applied(1, 2, 3), From: 1, Cursor: 3}})
	if len(rep.Violations) != 0 || rep.Synced != 2 || !strings.Contains(rep.Summary(), "2 changes synced to the DR site: history OK") {
		t.Fatalf("clean sync: %+v, %s", rep.Violations, rep.Summary())
	}
	rep = Check(Job{Sync: &Sync{Source: src, Target: applied(1, 3), From: 0, Cursor: 3}})
	if got := syncRules(rep.Violations); got != "sync-lost" {
		t.Fatalf("a change lost on the way: %q, want sync-lost", got)
	}
}
