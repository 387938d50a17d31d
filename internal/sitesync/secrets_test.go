package sitesync_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/chaos/history"
	"github.com/tandemhq/tandem/internal/config"
	"github.com/tandemhq/tandem/internal/store"
)

// With sync_secrets, a secret set on production arrives on the DR site sealed with the
// DR site's own key (each site has its own): never production's ciphertext, never the
// value in clear in the DR site's change log. Updates and deletes follow; a full sync
// removes the synced secrets and users production no longer has and keeps the DR
// site's own.
func TestSecretsSync(t *testing.T) {
	dr := newSite(t, "dr", "")
	dr.start(nil)
	tokenFile := dr.syncToken()
	// The DR site's own secret and user.
	if err := dr.c.SecretSet(ctx(t), "LOCAL", []byte("dr-only")); err != nil {
		t.Fatal(err)
	}
	must(dr.c.UserAdd(ctx(t), "dr-admin", "admin", "correct horse battery"))
	prod := newSite(t, "prod", "")
	prod.start(func(c *config.Config) {
		c.SiteSync.Target = []string{"http://" + dr.node.Addr()}
		c.SiteSync.TokenFile = tokenFile
		c.SiteSync.Retry = 50 * time.Millisecond
		c.SiteSync.SyncSecrets, c.SiteSync.SyncUsers = true, true
	})
	if bytes.Equal(prod.node.Sealer().TransferKey(), dr.node.Sealer().TransferKey()) {
		t.Fatal("the two sites have one secret key: this test needs each its own")
	}

	value := func(s *site, name string) (string, error) {
		sec, err := s.st.SecretGet(ctx(t), name)
		if err != nil {
			return "", err
		}
		return s.node.Sealer().Open(name, sec.Ciphertext)
	}
	arrived := func(name, want string) {
		t.Helper()
		waitFor(t, 10*time.Second, "secret "+name+" on the DR site", func() (bool, string) {
			v, err := value(dr, name)
			return err == nil && v == want, fmt.Sprintf("%q %v", v, err)
		})
	}
	if err := prod.c.SecretSet(ctx(t), "DB_PASS", []byte("hunter2")); err != nil {
		t.Fatal(err)
	}
	must(prod.c.UserAdd(ctx(t), "alice", "operator", "alice's long password"))
	arrived("DB_PASS", "hunter2")
	if err := prod.c.SecretSet(ctx(t), "DB_PASS", []byte("hunter3")); err != nil {
		t.Fatal(err)
	}
	arrived("DB_PASS", "hunter3")
	if err := prod.c.SecretSet(ctx(t), "GONE", []byte("soon")); err != nil {
		t.Fatal(err)
	}
	arrived("GONE", "soon")
	if err := prod.c.SecretDelete(ctx(t), "GONE"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the delete on the DR site", func() (bool, string) {
		_, err := dr.st.SecretGet(ctx(t), "GONE")
		return errors.Is(err, store.ErrNotFound), fmt.Sprint(err)
	})
	prodSec := must(prod.st.SecretGet(ctx(t), "DB_PASS"))
	drSec := must(dr.st.SecretGet(ctx(t), "DB_PASS"))
	if bytes.Equal(prodSec.Ciphertext, drSec.Ciphertext) {
		t.Fatal("the DR site stored production's ciphertext")
	}
	drLog := must(dr.st.ChangeList(ctx(t), store.ChangeListParams{Limit: 100000}))
	for _, c := range drLog {
		if bytes.Contains(c.Def, []byte("hunter")) || bytes.Contains(c.Def, []byte("soon")) {
			t.Fatalf("a secret's value in clear in the DR site's change log: %s", c.Def)
		}
	}
	prodLog := must(prod.st.ChangeList(ctx(t), store.ChangeListParams{Limit: 100000}))
	full := int64(0) // the first full sync's sequence: its items all carry it
	for _, c := range drLog {
		if c.SourceSeq != 0 {
			full = c.SourceSeq
			break
		}
	}
	open := func(target bool, name string, ct []byte) (string, error) {
		if target {
			return dr.node.Sealer().Open(name, ct)
		}
		return prod.node.Sealer().Open(name, ct)
	}
	vs := history.CheckSync(history.Sync{Source: prodLog, Target: drLog, From: full, Cursor: must(dr.st.SyncTargetGet(ctx(t))).Cursor,
		Sent: func(string) bool { return true }, Open: open})
	for _, v := range vs {
		t.Errorf("[%s] %s", v.Rule, v.Detail)
	}

	// Paused, production drops alice and DB_PASS; a full sync removes them on the DR
	// site and keeps its own.
	must(prod.c.SyncPause(ctx(t), true))
	if err := prod.c.SecretDelete(ctx(t), "DB_PASS"); err != nil {
		t.Fatal(err)
	}
	if err := prod.c.UserDelete(ctx(t), "alice"); err != nil {
		t.Fatal(err)
	}
	must(prod.c.SyncFull(ctx(t)))
	if _, err := dr.st.SecretGet(ctx(t), "DB_PASS"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a secret production deleted stayed on the DR site after a full sync: %v", err)
	}
	if _, err := dr.st.UserGet(ctx(t), "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a user production deleted stayed on the DR site after a full sync: %v", err)
	}
	if v, err := value(dr, "LOCAL"); err != nil || v != "dr-only" {
		t.Fatalf("the DR site's own secret after a full sync: %q %v", v, err)
	}
	must(dr.st.UserGet(ctx(t), "dr-admin"))
	// The DR site still takes the stream with the token it made (its own, kept).
	must(prod.c.SyncPause(ctx(t), false))
	if err := prod.c.SecretSet(ctx(t), "AFTER", []byte("full")); err != nil {
		t.Fatal(err)
	}
	arrived("AFTER", "full")
}
