package history

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/tandemhq/tandem/internal/api/wire"
)

func keptSum(id int64) string {
	s := sha256.Sum256(KeptBytes(id))
	return hex.EncodeToString(s[:])
}

// keptHistory is a clean history of two succeeded runs whose outputs downloaded.
func keptHistory() Job {
	h := Job{Kept: true, Listed: map[int64]int{1: 1, 2: 1}}
	for id := int64(1); id <= 2; id++ {
		h.Runs = append(h.Runs, wire.Run{ID: id, Job: "kept", State: "succeeded", Attempt: 1, MaxAttempts: 1})
		o := wire.Output{Run: id, Name: KeptFile, Size: KeptSize, SHA256: keptSum(id),
			Holders: []wire.Holder{{Node: "a", State: "verified"}, {Node: "b", State: "verified"}}}
		h.Downloads = append(h.Downloads, Download{Run: id, Output: o, SHA256: keptSum(id), Size: KeptSize})
	}
	return h
}

func outputViolations(h Job) []string {
	byID := map[int64]wire.Run{}
	for _, r := range h.Runs {
		byID[r.ID] = r
	}
	var out []string
	checkOutputs(h, byID, func(rule, detail string, _ []wire.Run) { out = append(out, rule+": "+detail) })
	return out
}

// The rule passes a clean history and finds each way an output can go wrong.
func TestCheckOutputs(t *testing.T) {
	if v := outputViolations(keptHistory()); len(v) != 0 {
		t.Fatalf("a clean history broke the rule: %v", v)
	}
	cases := map[string]func(h *Job){
		"not listed":      func(h *Job) { h.Listed[2] = 0; h.Downloads = h.Downloads[:1] },
		"wrong record":    func(h *Job) { h.Downloads[0].Output.SHA256 = keptSum(7) },
		"wrong bytes":     func(h *Job) { h.Downloads[1].SHA256 = keptSum(1) },
		"short download":  func(h *Job) { h.Downloads[1].Size = 10 },
		"download failed": func(h *Job) { h.Downloads[0].SHA256, h.Downloads[0].Err = "", "connection refused" },
		"lost with a live holder": func(h *Job) {
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
