package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/internal/chaos/history"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storepg"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

// drSite is the soak's disaster-recovery site: one node on a SQLite repository of its
// own, the sync target of the soak's cluster, reached through a proxy. While the faults
// hit the cluster, the site's node is killed with SIGKILL and restarted, and its link
// slowed or refused, now and then; the cluster's configuration changes all the while.
type drSite struct {
	c     *Cluster
	node  *Node
	proxy *Proxy
	// Conf is the cluster's server configuration that makes the site its target.
	Conf   string
	faults atomic.Int32 // faults that hit the site
}

// drNode is the DR site's node.
var drNode = NodeSpec{ID: "dr-a"}

// startSite starts the DR site under dir and writes the sending cluster's configuration.
func startSite(ctx context.Context, binary, dir string) (s *drSite, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("DR site: %w", err)
	}
	c, err := New(Options{Binary: binary, Dir: dir})
	if err != nil {
		return nil, fmt.Errorf("DR site: %w", err)
	}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	n, err := c.Start(ctx, drNode)
	if err != nil {
		return nil, fmt.Errorf("DR site: %w", err)
	}
	if _, _, err := c.WaitPrimary(withTimeout(ctx, 30*time.Second)); err != nil {
		return nil, fmt.Errorf("DR site: %w", err)
	}
	tok, err := c.Client().TokenCreate(withTimeout(ctx, 30*time.Second), "soak-sync", "sync", "")
	if err != nil {
		return nil, fmt.Errorf("DR site: sync token: %w", err)
	}
	tokenFile := filepath.Join(dir, "sync.token")
	if err := os.WriteFile(tokenFile, []byte(tok.Secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("DR site: %w", err)
	}
	proxy, err := NewProxy(strings.TrimPrefix(n.Addr(), "http://"))
	if err != nil {
		return nil, fmt.Errorf("DR site: %w", err)
	}
	s = &drSite{c: c, node: n, proxy: proxy, Conf: filepath.Join(dir, "source.toml")}
	// Retries come quickly and never pause the sender: the check wants every change
	// through once the faults end.
	conf := fmt.Sprintf("[sitesync]\ntarget = [\"http://%s\"]\ntoken_file = %q\ntimeout = \"2s\"\nretry = \"100ms\"\nmax_failures = 1000\nbatch = 20\n",
		proxy.Addr(), tokenFile)
	if err := os.WriteFile(s.Conf, []byte(conf), 0o600); err != nil {
		_ = proxy.Close()
		return nil, fmt.Errorf("DR site: %w", err)
	}
	return s, nil
}

// Close stops the site's node and its proxy.
func (s *drSite) Close() error {
	return errors.Join(s.proxy.Close(), s.c.Close())
}

// disturb hits the site until ctx ends: every 2 to 6 s its node is killed (SIGKILL) and
// restarted, or its link slowed or refused for a while.
func (s *drSite) disturb(ctx context.Context, rng *rand.Rand, out func(string, ...any)) {
	for {
		sleep(ctx, between(rng, 2*time.Second, 6*time.Second))
		if ctx.Err() != nil {
			return
		}
		switch rng.IntN(3) {
		case 0:
			if err := s.node.Kill(); err != nil {
				out("DR site: %v", err)
				continue
			}
			sleep(ctx, between(rng, 200*time.Millisecond, 1500*time.Millisecond))
			if err := s.restart(context.WithoutCancel(ctx)); err != nil {
				out("DR site: %v", err)
				continue
			}
			out("DR site: kill -9 and restart")
		case 1:
			f := Fault{Latency: [2]time.Duration{0, time.Duration(rng.IntN(200)) * time.Millisecond}}
			s.proxy.Set(f)
			out("DR site: link %s", f)
			sleep(ctx, between(rng, 500*time.Millisecond, 3*time.Second))
			s.proxy.Set(Fault{})
		default:
			s.proxy.Set(Fault{Refuse: true})
			out("DR site: link refused")
			sleep(ctx, between(rng, 500*time.Millisecond, 3*time.Second))
			s.proxy.Set(Fault{})
		}
		s.faults.Add(1)
	}
}

// restart starts the site's node again and points the proxy at its new address.
func (s *drSite) restart(ctx context.Context) error {
	if err := s.node.Restart(withTimeout(ctx, 30*time.Second)); err != nil {
		return err
	}
	s.proxy.SetTarget(strings.TrimPrefix(s.node.Addr(), "http://"))
	return nil
}

// heal lifts the link's fault and starts the node if it is down.
func (s *drSite) heal(ctx context.Context) error {
	s.proxy.Set(Fault{})
	if s.node.Running() {
		return nil
	}
	return s.restart(ctx)
}

// churn changes the cluster's configuration until ctx ends: jobs dr-0 to dr-4 (on
// demand, never run) applied, changed, paused, resumed and deleted, every 100 to 500
// ms. What fails (the cluster is under faults) is not retried: the check compares the
// logs, not the writes.
func churn(ctx context.Context, c *Cluster, rng *rand.Rand) {
	for i := 0; ; i++ {
		sleep(ctx, between(rng, 100*time.Millisecond, 500*time.Millisecond))
		if ctx.Err() != nil {
			return
		}
		name := fmt.Sprintf("dr-%d", rng.IntN(5))
		cctx := withTimeout(ctx, CallTimeout)
		cl := c.Client()
		switch rng.IntN(6) {
		case 0:
			_ = cl.JobDelete(cctx, name)
		case 1:
			_, _ = cl.JobPause(cctx, name, rng.IntN(2) == 0)
		default:
			_, _ = cl.JobApply(cctx, []byte(fmt.Sprintf("name = %q\n[noop]\nsleep = \"%dms\"\n", name, i)), "toml")
		}
	}
}

// checkSite waits for the DR site to have every change of the cluster's repository db
// (engine "sqlite" or "postgres"), then judges the two change logs (history.CheckSync).
func (s *drSite) checkSite(ctx context.Context, engine, db string, progress func(string, ...any)) (*history.Sync, error) {
	var src store.Store
	var err error
	if engine == "postgres" {
		src, err = storepg.Open(ctx, db, nil)
	} else {
		src, err = storesqlite.Open(ctx, db)
	}
	if err != nil {
		return nil, fmt.Errorf("DR site check: open the cluster's repository: %w", err)
	}
	defer src.Close()
	dst, err := storesqlite.Open(ctx, s.c.DB())
	if err != nil {
		return nil, fmt.Errorf("DR site check: open its repository: %w", err)
	}
	defer dst.Close()
	latest, err := src.ConfigVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("DR site check: %w", err)
	}
	var cursor int64
	for {
		t, err := dst.SyncTargetGet(ctx)
		if err == nil && t.Cursor >= latest {
			cursor = t.Cursor
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("DR site check: the DR site's cursor is %d, the cluster's log at %d: %w", t.Cursor, latest, ctx.Err())
		}
		sleep(ctx, 200*time.Millisecond)
	}
	h := &history.Sync{Cursor: cursor}
	if h.Source, err = changeLog(ctx, src); err != nil {
		return nil, err
	}
	if h.Target, err = changeLog(ctx, dst); err != nil {
		return nil, err
	}
	// Streaming starts after the full sync that made the site a target.
	replaced, err := dst.EventList(ctx, store.EventListParams{Type: "sync.replaced"})
	if err != nil || len(replaced) == 0 {
		return nil, fmt.Errorf("DR site check: no sync.replaced event (%v)", err)
	}
	for _, e := range replaced {
		if seq, ok := e.Data["seq"].(float64); ok && int64(seq) > h.From {
			h.From = int64(seq)
		}
	}
	progress("DR site: caught up at sequence %d (full sync at %d, %d faults on the site)", cursor, h.From, s.faults.Load())
	return h, nil
}

// between is a random duration from lo to hi.
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// changeLog reads a repository's whole change log.
func changeLog(ctx context.Context, st store.Store) ([]store.Change, error) {
	var out []store.Change
	for after := int64(0); ; {
		cs, err := st.ChangeList(ctx, store.ChangeListParams{After: after})
		if err != nil {
			return nil, fmt.Errorf("read the change log: %w", err)
		}
		if len(cs) == 0 {
			return out, nil
		}
		out = append(out, cs...)
		after = cs[len(cs)-1].Seq
	}
}
