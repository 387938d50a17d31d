package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/api"
	"github.com/tandemhq/tandem/internal/chaos/history"
)

// KeptScript writes history.KeptFile into the attempt's output directory.
func KeptScript() string {
	return fmt.Sprintf(`yes "run $TANDEM_RUN_ID" | head -c %d > "$TANDEM_OUTPUT_DIR/%s"`, history.KeptSize, history.KeptFile)
}

// fetchOutputs lists the outputs of every succeeded run and downloads each through the
// cluster (any live node: the client tries them in turn).
func fetchOutputs(ctx context.Context, c *Cluster, runs []api.Run) ([]history.Download, map[int64]int, error) {
	var out []history.Download
	listed := map[int64]int{}
	for _, r := range runs {
		if r.State != "succeeded" {
			continue
		}
		var outs []api.Output
		err := Poll(ctx, 200*time.Millisecond, fmt.Sprintf("outputs of run %d", r.ID), func(ctx context.Context) (bool, string, error) {
			var err error
			outs, err = c.Client().OutputList(ctx, r.ID)
			return err == nil, "", err
		})
		if err != nil {
			return nil, nil, err
		}
		listed[r.ID] = len(outs)
		for _, o := range outs {
			d := history.Download{Run: r.ID, Output: o}
			for try := range 3 { // a failed answer is asked again, a wrong one is not
				if try > 0 {
					sleep(ctx, time.Second)
				}
				h := sha256.New()
				n := &countWriter{w: h}
				if err := c.Client().OutputGet(ctx, r.ID, o.Name, n); err != nil {
					d.Err = err.Error()
					continue
				}
				d.Err, d.SHA256, d.Size = "", hex.EncodeToString(h.Sum(nil)), n.n
				break
			}
			out = append(out, d)
		}
	}
	return out, listed, nil
}

type countWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
