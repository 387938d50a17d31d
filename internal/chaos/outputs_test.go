package chaos

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/api"
)

func keptSum(id int64) string {
	s := sha256.Sum256(KeptBytes(id))
	return hex.EncodeToString(s[:])
}

// keptHistory is a clean history of two succeeded runs whose outputs downloaded.
func keptHistory() History {
	h := History{Kept: true, Listed: map[int64]int{1: 1, 2: 1}}
	for id := int64(1); id <= 2; id++ {
		h.Runs = append(h.Runs, api.Run{ID: id, Job: keptJob, State: "succeeded", Attempt: 1, MaxAttempts: 1})
		o := api.Output{Run: id, Name: keptFile, Size: keptSize, SHA256: keptSum(id),
			Holders: []api.Holder{{Node: "a", State: "verified"}, {Node: "b", State: "verified"}}}
		h.Downloads = append(h.Downloads, Download{Run: id, Output: o, SHA256: keptSum(id), Size: keptSize})
	}
	return h
}

func outputViolations(h History) []string {
	byID := map[int64]api.Run{}
	for _, r := range h.Runs {
		byID[r.ID] = r
	}
	var out []string
	checkOutputs(h, byID, func(rule, detail string, _ []api.Run) { out = append(out, rule+": "+detail) })
	return out
}

// The rule passes a clean history and finds each way an output can go wrong.
func TestCheckOutputs(t *testing.T) {
	if v := outputViolations(keptHistory()); len(v) != 0 {
		t.Fatalf("a clean history broke the rule: %v", v)
	}
	cases := map[string]func(h *History){
		"not listed":      func(h *History) { h.Listed[2] = 0; h.Downloads = h.Downloads[:1] },
		"wrong record":    func(h *History) { h.Downloads[0].Output.SHA256 = keptSum(7) },
		"wrong bytes":     func(h *History) { h.Downloads[1].SHA256 = keptSum(1) },
		"short download":  func(h *History) { h.Downloads[1].Size = 10 },
		"download failed": func(h *History) { h.Downloads[0].SHA256, h.Downloads[0].Err = "", "connection refused" },
		"lost with a live holder": func(h *History) {
			h.Downloads[0].SHA256, h.Downloads[0].Err = "", "output lost: no live holder"
			h.Downloads[0].Output.Holders[0].State = "lost"
		},
	}
	for name, spoil := range cases {
		h := keptHistory()
		spoil(&h)
		if v := outputViolations(h); len(v) == 0 {
			t.Errorf("%s: the rule did not break", name)
		}
	}
	// Every holder lost: the output may be gone.
	h := keptHistory()
	h.Downloads[0].SHA256, h.Downloads[0].Err = "", "output lost: no live holder (last holder b, lost at …)"
	for i := range h.Downloads[0].Output.Holders {
		h.Downloads[0].Output.Holders[i].State = "lost"
	}
	if v := outputViolations(h); len(v) != 0 {
		t.Fatalf("an output whose every holder was lost broke the rule: %v", v)
	}
}

// The job's script writes what KeptBytes says.
func TestKeptScript(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("/bin/sh", "-c", KeptScript())
	cmd.Env = append(os.Environ(), "TANDEM_RUN_ID=4711", "TANDEM_OUTPUT_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, keptFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(KeptBytes(4711)) {
		t.Fatalf("the script wrote %d bytes starting %q, want %d starting %q", len(got), strings.SplitN(string(got), "\n", 2)[0],
			keptSize, strings.SplitN(string(KeptBytes(4711)), "\n", 2)[0])
	}
}
