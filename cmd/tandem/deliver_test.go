package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/testutil"
)

const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// holdingReceiver is a webhook endpoint that verifies each request's Standard Webhooks
// signature with the library and holds the first verified one unanswered, so that its
// sender is caught mid-delivery; later ones get 204.
type holdingReceiver struct {
	mu    sync.Mutex
	ids   []string // webhook-id of every verified request, in order
	bad   int      // requests whose signature did not verify
	first chan struct{}
	srv   *httptest.Server
}

func newHoldingReceiver(t *testing.T) *holdingReceiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(webhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &holdingReceiver{first: make(chan struct{})}
	release := make(chan struct{})
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		if err := wh.Verify(b, req.Header); err != nil {
			r.bad++
			r.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		r.ids = append(r.ids, req.Header.Get("webhook-id"))
		n := len(r.ids)
		r.mu.Unlock()
		if n == 1 {
			close(r.first)
			select { // until the sender is gone (its connection closes) or the test ends
			case <-req.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() { close(release); r.srv.Close() })
	return r
}

func (r *holdingReceiver) seen() (ids []string, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...), r.bad
}

func deliveries(t *testing.T, s *server, job string) []api.Delivery {
	t.Helper()
	var ds []api.Delivery
	if err := json.Unmarshal([]byte(tandem(t, s, "deliveries", "--job", job, "--json")), &ds); err != nil {
		t.Fatal(err)
	}
	return ds
}

// A node killed with kill -9 while its webhook request is held by the receiver: another
// node sends the delivery again, under the same webhook-id, once the claim is released
// (the node is declared lost) or expires. The receiver sees that id at most twice, and
// the record ends delivered, by a surviving node, with one recorded attempt.
func TestDeliveryOfAKilledSenderIsSentAgainByAnotherNode(t *testing.T) {
	// Not parallel: it judges timings (shares, drains, lost nodes) of real processes,
	// which other clusters starting beside it on two cores would distort.
	dir := t.TempDir()
	db := filepath.Join(dir, "shared.db")
	// A claim of 8s: the sender cuts its own request off at 7.2s, long after the kill.
	conf := filepath.Join(dir, "tandem.toml")
	if err := os.WriteFile(conf, []byte("[deliver]\nclaim = \"8s\"\nhandoff = \"1s\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rcv := newHoldingReceiver(t)
	nodes := map[string]*server{}
	for i, id := range []string{"a", "b", "c"} {
		nodes[id] = startServer(t, filepath.Join(dir, id), "--db", db, "--node-id", id, "--priority", fmt.Sprint(i), "--config", conf)
	}
	a := nodes["a"]
	testutil.Wait(t, 30*time.Second, "a primary, b and c standing by", func() bool {
		st := status(t, a)
		return st.Primary == "a" && modeOf(st, "b") == "standby" && modeOf(st, "c") == "standby"
	})
	applyJob(t, a, dir, fmt.Sprintf(`
name = "hook"
[noop]
[[deliver]]
webhook = %q
secret  = %q
`, rcv.srv.URL, webhookSecret))
	tandem(t, a, "run", "hook", "--wait")

	select {
	case <-rcv.first:
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver got no verified request")
	}
	var rec api.Delivery
	testutil.Wait(t, 5*time.Second, "the delivery to show as sending", func() bool {
		ds := deliveries(t, a, "hook")
		if len(ds) != 1 {
			t.Fatalf("deliveries of the run: %+v; want one", ds)
		}
		rec = ds[0]
		return rec.State == "sending" && rec.Node != ""
	})
	killed := rec.Node
	if err := nodes[killed].stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	t.Logf("killed node %s mid-delivery of %s", killed, rec.Key)
	var alive *server
	for id, s := range nodes {
		if id != killed {
			alive = s
			break
		}
	}
	testutil.Wait(t, 60*time.Second, "the delivery to end", func() bool {
		ds := deliveries(t, alive, "hook")
		rec = ds[0]
		return rec.State != "pending" && rec.State != "sending"
	})
	ids, bad := rcv.seen()
	if bad != 0 {
		t.Errorf("%d requests failed signature verification", bad)
	}
	if len(ids) != 2 || ids[0] != rec.Key || ids[1] != rec.Key {
		t.Errorf("receiver saw webhook-ids %v; want %s twice (the held request, then the one sent again)", ids, rec.Key)
	}
	var full api.Delivery
	if err := json.Unmarshal([]byte(tandem(t, alive, "deliveries", "show", fmt.Sprint(rec.ID), "--json")), &full); err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for _, at := range full.History {
		if at.Outcome == "delivered" {
			delivered++
			if at.Node == killed {
				t.Errorf("attempt %d delivered by the killed node %s", at.N, at.Node)
			}
		}
	}
	if full.State != "delivered" || delivered != 1 || full.DeliveredAt == nil {
		t.Fatalf("record after the kill: state %s, %d delivered attempts, history %+v; want delivered once", full.State, delivered, full.History)
	}
	t.Logf("%s delivered by %s after the kill; attempts recorded: %d", rec.Key, full.Node, len(full.History))
}
