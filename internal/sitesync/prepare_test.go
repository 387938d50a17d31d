package sitesync

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/api/wire"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
)

// A secret's change is taken only sealed for this site's transfer key, by a node that
// has the site's secret key; it is stored sealed with that key.
func TestPrepareSecret(t *testing.T) {
	dr, _ := auth.NewSealer(bytes.Repeat([]byte{1}, 32))
	other, _ := auth.NewSealer(bytes.Repeat([]byte{2}, 32))
	change := func(pub []byte) Change {
		sealed, err := auth.SealTransfer(pub, "DB", "pw")
		if err != nil {
			t.Fatal(err)
		}
		def, _ := json.Marshal(wire.SyncSecret{Version: 3, Sealed: sealed})
		return Change{Seq: 7, Entity: store.EntitySecret, Key: "DB", Op: store.OpApply, Def: def}
	}
	var seen []string
	out, err := prepare(Source{}, []Change{change(dr.TransferKey())}, dr, func(v string) { seen = append(seen, v) })
	if err != nil {
		t.Fatal(err)
	}
	var sc store.ChangeSecret
	if err := json.Unmarshal(out[0].Def, &sc); err != nil || sc.Version != 3 {
		t.Fatalf("stored %s: %v", out[0].Def, err)
	}
	if len(seen) != 1 || seen[0] != "pw" {
		t.Fatalf("values told to the log redactor: %q", seen)
	}
	if v, err := dr.Open("DB", sc.Ciphertext); err != nil || v != "pw" {
		t.Fatalf("the stored ciphertext opens to %q, %v", v, err)
	}
	cases := []struct {
		name string
		c    Change
		sl   *auth.Sealer
		want string
	}{
		{"no secret key here", change(dr.TransferKey()), nil, "secret key"},
		{"sealed for another site", change(other.TransferKey()), dr, "another site"},
		{"the source's ciphertext, not a transfer", Change{Seq: 7, Entity: store.EntitySecret, Key: "DB", Op: store.OpApply, Def: json.RawMessage(`{"version":1,"ciphertext":"AAEC"}`)}, dr, "sealed for this site"},
	}
	for _, c := range cases {
		_, err := prepare(Source{}, []Change{c.c}, c.sl, func(string) {})
		var ce *ChangeError
		if !errors.As(err, &ce) || ce.Seq != 7 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a ChangeError of change 7 saying %q", c.name, err, c.want)
		}
	}
}
