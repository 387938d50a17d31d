package history

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tandemhq/tandem/internal/api/wire"
)

// KeptFile is the output file of the soak's job with copies: its bytes follow from the
// run's id, so the checker knows what every download must return.
const KeptFile = "report.txt"

// KeptSize is the size of KeptFile.
const KeptSize = 20_000

// KeptBytes is what KeptFile holds for run id.
func KeptBytes(id int64) []byte {
	line := []byte(fmt.Sprintf("run %d\n", id))
	return bytes.Repeat(line, KeptSize/len(line)+1)[:KeptSize]
}

// Download is one output of a run as the harness found it once the cluster settled: its
// record and the bytes a live node served for it, or the error it gave.
type Download struct {
	Run    int64
	Output wire.Output
	SHA256 string // of the bytes served; "" when Err is set
	Size   int64
	Err    string
}

// checkOutputs judges the output durability rule: every succeeded run of the job kept
// exactly its one output, recorded with the hash of the bytes it should hold, and a live
// node served those bytes at the end, unless no holder of it was left (every holder
// lost). Runs that did not succeed are not judged: an attempt's outputs are kept with
// its result only.
func checkOutputs(h Job, byID map[int64]wire.Run, add func(string, string, []wire.Run)) (checked, gone int) {
	if !h.Kept {
		return 0, 0
	}
	for id, n := range h.Listed {
		if n != 1 {
			add("outputs", fmt.Sprintf("succeeded run %d lists %d outputs, want 1 (%s)", id, n, KeptFile), []wire.Run{byID[id]})
		}
	}
	for _, d := range h.Downloads {
		want := KeptBytes(d.Run)
		sum := sha256.Sum256(want)
		wantSum := hex.EncodeToString(sum[:])
		around := []wire.Run{byID[d.Run]}
		checked++
		switch {
		case d.Output.Name != KeptFile:
			add("outputs", fmt.Sprintf("run %d has an output %q, want only %s", d.Run, d.Output.Name, KeptFile), around)
		case d.Output.SHA256 != wantSum || d.Output.Size != int64(len(want)):
			add("outputs", fmt.Sprintf("run %d: %s recorded with %d bytes, SHA-256 %s; its run wrote %d bytes, %s",
				d.Run, KeptFile, d.Output.Size, short(d.Output.SHA256), len(want), short(wantSum)), around)
		case d.Err != "" && strings.Contains(d.Err, "output lost") && allLost(d.Output):
			gone++ // every holder was lost: the rule allows it (and the answer said so)
		case d.Err != "":
			add("outputs", fmt.Sprintf("run %d: %s could not be downloaded with holders %s: %s", d.Run, KeptFile, holders(d.Output), d.Err), around)
		case d.SHA256 != wantSum || d.Size != int64(len(want)):
			add("outputs", fmt.Sprintf("run %d: %s downloaded as %d bytes, SHA-256 %s; want %d bytes, %s",
				d.Run, KeptFile, d.Size, short(d.SHA256), len(want), short(wantSum)), around)
		}
	}
	return checked, gone
}

func allLost(o wire.Output) bool {
	for _, hd := range o.Holders {
		if hd.State != "lost" {
			return false
		}
	}
	return true
}

func holders(o wire.Output) string {
	var b []string
	for _, hd := range o.Holders {
		b = append(b, hd.Node+" ("+hd.State+")")
	}
	if len(b) == 0 {
		return "none"
	}
	return strings.Join(b, ", ")
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}
