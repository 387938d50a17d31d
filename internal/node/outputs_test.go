package node_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store/storesqlite"
	"github.com/tandemhq/tandem/internal/testutil"
)

// Outputs are kept for output_retention after their run ends, then deleted from the
// node's disk and from the repository.
func TestOutputsExpireAfterRetention(t *testing.T) {
	h := start(t, nil)
	h.apply("name = \"out\"\n[command]\nargv = [\"sh\", \"-c\", \"echo hi > $TANDEM_OUTPUT_DIR/r.txt\"]\n")
	r, err := h.c.JobRun(ctx(t), "out")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Wait(t, 30*time.Second, "the run to succeed", func() bool {
		got, err := h.c.RunGet(ctx(t), r.ID)
		return err == nil && got.State == "succeeded"
	})
	file := filepath.Join(h.dir, "outputs", "1", "1", "r.txt")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("output on disk: %v", err)
	}
	if err := h.node.SweepOutputs(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("an output within retention was deleted: %v", err)
	}
	// The run ended longer ago than the retention (30 days by default).
	st, err := storesqlite.Open(ctx(t), filepath.Join(h.dir, "tandem.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.SQL().ExecContext(ctx(t), `UPDATE runs SET finished_at = finished_at - ? WHERE id = ?`,
		(31 * 24 * time.Hour).Microseconds(), r.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.node.SweepOutputs(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("an output past retention is still on disk: %v", err)
	}
	if outs, err := h.c.OutputList(ctx(t), r.ID); err != nil || len(outs) != 0 {
		t.Fatalf("run %d still lists outputs %+v (%v)", r.ID, outs, err)
	}
	if err := h.c.OutputGet(ctx(t), r.ID, "r.txt", io.Discard); err == nil {
		t.Fatal("an expired output still downloads")
	}
}
