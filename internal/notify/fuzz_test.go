package notify_test

import (
	"testing"

	"github.com/tandemhq/tandem/internal/notify"
)

// FuzzParse: any input is a rule file or an error, never a panic; what parses
// compiles again from its stored JSON, and judges an event without panicking.
func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("[[rule]]\nname = \"r\"\non = [\"run.failed\"]\nwhen = 'data.attempt >= data.max_attempts && data.job matches \"^sales\"'\n"))
	f.Add([]byte("[[rule]]\nname = \"r\"\non = [\"node.lost\"]\nwhen = 'len(data.requeued) > 0'\nkey = \"{{.Data.node}}\"\n"))
	f.Add([]byte("[[rule]]\nname = \"x\"\non = []\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return // a rule file is small; bound the work per input
		}
		specs, err := notify.Parse(data)
		if err != nil {
			return
		}
		for _, s := range specs {
			b, err := s.Encode()
			if err != nil {
				t.Fatal(err)
			}
			back, err := notify.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			r, err := notify.Compile(back)
			if err != nil {
				t.Fatalf("parsed rule %q does not compile from its JSON: %v", s.Name, err)
			}
			for _, typ := range s.On {
				_, _ = r.Match(notify.Event{ID: 1, Type: typ, Data: map[string]any{"node": "b", "requeued": []any{1.0}}})
				_, _ = r.Render(notify.Event{ID: 1, Type: typ})
			}
		}
	})
}
