package main_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/chaos"
	"github.com/tandemhq/tandem/internal/chaos/history"
	"github.com/tandemhq/tandem/internal/client"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storepg"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
	"github.com/tandemhq/tandem/internal/testutil"
)

// Two clusters of two processes each: production on SQLite, the DR site on
// PostgreSQL. While production changes jobs without pause, its sending primary and the
// DR node receiving the batches are each killed with SIGKILL, the latter behind a
// proxy that delays its answers (so it dies with batches committed and not yet
// acknowledged). Afterwards the DR site has applied every production change once, in
// production's order, and holds the same jobs; secrets (sync_secrets, each site its
// own key) open on the DR site to production's values.
func TestSiteSyncSurvivesKilledSenderAndReceiver(t *testing.T) {
	// Not parallel: four processes on two cores.
	dir := t.TempDir()
	pg := pgtest.NewDatabase(t)
	// Each cluster's nodes share their cluster's secret key; the two clusters' differ.
	prodKey, drKey := filepath.Join(dir, "prod.key"), filepath.Join(dir, "dr.key")
	prodSealer, drSealer := secretKey(t, prodKey), secretKey(t, drKey)
	drConf := filepath.Join(dir, "dr.toml")
	must(t, os.WriteFile(drConf, []byte(fmt.Sprintf("secret_key_file = %q\n", drKey)), 0o644))
	draAddr, drbAddr := freeAddr(t), freeAddr(t)
	dra := startServer(t, filepath.Join(dir, "dr-a"), "--db", pg, "--node-id", "dr-a", "--listen", draAddr, "--config", drConf)
	drb := startServer(t, filepath.Join(dir, "dr-b"), "--db", pg, "--node-id", "dr-b", "--listen", drbAddr, "--priority", "1", "--config", drConf)
	drAdmin := client.NewConfig(client.Config{Servers: []string{dra.addr, drb.addr}, Token: readToken(t, dra.tokenDir)})
	tok, err := drAdmin.TokenCreate(ctx(t), "prod-sync", "sync", "")
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "sync.token")
	must(t, os.WriteFile(tokenFile, []byte(tok.Secret+"\n"), 0o600))
	proxy, err := chaos.NewProxy(draAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.Set(chaos.Fault{Latency: [2]time.Duration{0, 30 * time.Millisecond}})

	conf := filepath.Join(dir, "prod.toml")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf(`
secret_key_file = %q
[sitesync]
target = ["http://%s", "http://%s"]
token_file = %q
timeout = "2s"
retry = "100ms"
max_failures = 1000
batch = 20
sync_secrets = true
substitute = [{ from = "prod.example.com", to = "dr.example.com" }]
`, prodKey, proxy.Addr(), drbAddr, tokenFile)), 0o644))
	db := filepath.Join(dir, "prod.db")
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	a := startServer(t, filepath.Join(dir, "a"), "--db", db, "--node-id", "a", "--listen", aAddr, "--config", conf)
	testutil.Wait(t, 30*time.Second, "a to be primary", func() bool { return status(t, a).Primary == "a" })
	b := startServer(t, filepath.Join(dir, "b"), "--db", db, "--node-id", "b", "--listen", bAddr, "--priority", "1", "--config", conf)
	testutil.Wait(t, 30*time.Second, "b to stand by", func() bool { return modeOf(status(t, a), "b") == "standby" })
	prod := client.NewConfig(client.Config{Servers: []string{a.addr, b.addr}, Token: readToken(t, a.tokenDir)})

	// The writer: 300 changes, each retried until production answers.
	const changes = 300
	var wg sync.WaitGroup
	progress := make(chan int, changes)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range changes {
			var err error
			for try := 0; try < 100; try++ {
				switch {
				case i%15 == 14:
					err = prod.SecretSet(ctx(t), fmt.Sprintf("secret-%d", i%4), []byte(fmt.Sprintf("value of change %d", i)))
				case i%10 == 9:
					_, err = prod.JobPause(ctx(t), fmt.Sprintf("job-%d", i%7), i%20 == 9)
				case i%25 == 24:
					err = prod.JobDelete(ctx(t), fmt.Sprintf("job-%d", i%7))
					var ce *client.Error
					if errors.As(err, &ce) && ce.Status == 404 {
						err = nil
					}
				default:
					_, err = prod.JobApply(ctx(t), []byte(fmt.Sprintf("name = \"job-%d\"\nschedule = [\"@every %dm\"]\n[http]\nurl = \"http://prod.example.com/r/%d\"\n", i%7, 1+i%5, i)), "toml")
				}
				if err == nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("change %d: %v", i, err)
				return
			}
			progress <- i
		}
	}()
	waitProgress := func(n int) {
		for i := range progress {
			if i >= n {
				return
			}
		}
	}
	waitProgress(100)
	if err := a.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	waitProgress(200)
	if err := dra.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// Production's log against the DR site's.
	ps, err := storesqlite.Open(ctx(t), db)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	ds, err := storepg.Open(ctx(t), pg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	latest, err := ps.ConfigVersion(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Wait(t, 60*time.Second, "the DR site to catch up", func() bool {
		tg, err := ds.SyncTargetGet(ctx(t))
		return err == nil && tg.Cursor == latest
	})
	prodLog := listChanges(t, ps)
	drLog := listChanges(t, ds)
	// The sequence of the (one) full sync that made the DR site a target: streaming
	// starts after it.
	replaced, err := ds.EventList(ctx(t), store.EventListParams{Type: "sync.replaced"})
	if err != nil || len(replaced) != 1 {
		t.Fatalf("sync.replaced events: %v %v", replaced, err)
	}
	full := int64(replaced[0].Data["seq"].(float64))
	open := func(target bool, name string, ct []byte) (string, error) {
		if target {
			return drSealer.Open(name, ct)
		}
		return prodSealer.Open(name, ct)
	}
	secrets := 0
	for _, c := range drLog {
		if c.Entity == store.EntitySecret && c.SourceSeq > full {
			secrets++
		}
	}
	if secrets == 0 {
		t.Error("no secret change was streamed to the DR site")
	}
	for _, v := range history.CheckSync(history.Sync{Source: prodLog, Target: drLog, From: full, Cursor: latest, Sent: func(e string) bool { return e != store.EntityUser && e != store.EntityToken }, Open: open}) {
		t.Errorf("[%s] %s", v.Rule, v.Detail)
	}
	streamed := 0
	for _, c := range drLog {
		if c.SourceSeq > full {
			streamed++
		}
	}
	if want := int(latest - full); streamed != want || want < changes {
		t.Fatalf("the DR site applied %d changes after the full sync at %d, production made %d (%d writes)", streamed, full, want, changes)
	}
	pj, dj := jobSpecs(t, ps), jobSpecs(t, ds)
	for name, spec := range pj {
		if dj[name] != strings.ReplaceAll(spec, "prod.example.com", "dr.example.com") {
			t.Errorf("job %s: production %s, DR %s", name, spec, dj[name])
		}
	}
	if len(pj) != len(dj) {
		t.Errorf("%d jobs on production, %d on the DR site", len(pj), len(dj))
	}
	// The CLI's view of it, on both sides.
	if out := tandem(t, b, "sync", "status"); !strings.Contains(out, "source:       streaming") || !strings.Contains(out, "lag:          0 changes") {
		t.Errorf("tandem sync status on production:\n%s", out)
	}
	if out := tandem(t, drb, "sync", "status"); !strings.Contains(out, "target of:    ") || !strings.Contains(out, fmt.Sprintf("cursor %d", latest)) {
		t.Errorf("tandem sync status on the DR site:\n%s", out)
	}
	if out, err := tandemErr(drb, "job", "delete", "job-1"); err == nil || !strings.Contains(out, "sync target of") {
		t.Errorf("a local delete on the DR site: %v\n%s", err, out)
	}
	t.Logf("%d changes (%d of secrets) streamed after the full sync at %d; the sender and the receiver were killed on the way", streamed, secrets, full)
}

// secretKey writes a new secret key file and returns its sealer.
func secretKey(t *testing.T, path string) *auth.Sealer {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600))
	sl, err := auth.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

func listChanges(t *testing.T, s store.Store) []store.Change {
	var out []store.Change
	after := int64(0)
	for {
		cs, err := s.ChangeList(ctx(t), store.ChangeListParams{After: after})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 {
			return out
		}
		out = append(out, cs...)
		after = cs[len(cs)-1].Seq
	}
}

func jobSpecs(t *testing.T, s store.Store) map[string]string {
	jobs, err := s.JobList(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, j := range jobs {
		out[j.Name] = fmt.Sprintf("%s %v", j.Spec.HTTP.URL, j.Spec.Schedule)
	}
	return out
}

func readToken(t *testing.T, dir string) string {
	tok, err := auth.ReadBootstrapToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}
