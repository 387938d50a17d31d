package storepg_test

import (
	"context"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/internal/store/storepg"
)

// A restart of the database server frees every advisory lock at once; until a live
// holder's watcher has had time to take its lock again, a free lock is no proof that the
// holder died. Once it has, the lock is held again, and its release is seen at once.
func TestLivenessSurvivesServerRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := pgtest.StartServer(t)
	url, err := srv.CreateDatabase(ctx, "liveness")
	if err != nil {
		t.Fatal(err)
	}
	holder, err := storepg.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	watcher, err := storepg.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	release, err := holder.LivenessHold(ctx, "h#1")
	if err != nil {
		t.Fatal(err)
	}
	dead := func() bool {
		t.Helper()
		d, err := watcher.LivenessDead(ctx, "h#1")
		if err != nil {
			t.Logf("LivenessDead: %v", err) // the server may be restarting
		}
		return d
	}
	if dead() {
		t.Fatal("a held lock was judged dead")
	}
	if err := srv.Restart(ctx, pgtest.RestartOptions{Immediate: true}); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if dead() {
			t.Fatal("the holder was judged dead after a restart of the server, though its process lives")
		}
	}
	release()
	deadline := time.Now().Add(10 * time.Second)
	for !dead() {
		if time.Now().After(deadline) {
			t.Fatal("a released lock was not judged free")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
