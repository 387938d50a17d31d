package chaos

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/channel"
	"github.com/tandemhq/tandem/internal/job"
)

// The receiver accepts what tandem's webhook channel sends it, signed, and counts it by
// webhook-id; it answers every FailEvery-th request 503 (not counted), and counts an
// unsigned request as unverified.
func TestReceiverVerifiesAndCounts(t *testing.T) {
	r, err := NewReceiver(soakWebhookSecret, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	wh := &channel.Webhook{}
	d := job.Deliver{Webhook: r.URL(), Secret: soakWebhookSecret}
	m := channel.Message{Key: "dlv_7", Now: time.Now(), Data: job.TemplateData{Job: "j", RunID: 3, State: "succeeded"}}
	if _, err := wh.Send(ctx, d, m); err != nil {
		t.Fatalf("first send: %v", err)
	}
	if _, err := wh.Send(ctx, d, m); err == nil {
		t.Fatal("second send succeeded; want the receiver's 503")
	}
	if _, err := wh.Send(ctx, d, m); err != nil {
		t.Fatalf("third send: %v", err)
	}
	resp, err := http.Post(r.URL(), "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen, bad := r.Seen()
	if resp.StatusCode != http.StatusUnauthorized || bad != 1 || len(seen) != 1 || seen["dlv_7"] != 2 {
		t.Fatalf("unsigned request: HTTP %d; accepted %v, %d unverified; want 401, dlv_7 twice (the 503 not counted), 1 unverified", resp.StatusCode, seen, bad)
	}
}
