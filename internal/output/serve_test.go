package output

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/tandemhq/tandem/internal/peer"
	"github.com/tandemhq/tandem/internal/store"
)

// The service has no repository here: a ServeCopy that read a record would panic.
func newServeTest(t *testing.T) (*Service, string) {
	t.Helper()
	dir := t.TempDir()
	return New(Params{Log: slog.New(slog.DiscardHandler), Node: "a", DataDir: filepath.Join(dir, "data")}), dir
}

func TestServeCopyOfACheckedFileReadsNoRecord(t *testing.T) {
	t.Parallel()
	s, _ := newServeTest(t)
	ref := store.OutputRef{RunID: 7, Attempt: 1, Name: "sub/report.csv"}
	body := []byte("a,b\n1,2\n")
	if err := mkdirs(s.layout.Root, filepath.Dir(s.layout.File(ref))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.layout.File(ref), body, FileMode); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	s.Remember(ref, hex.EncodeToString(sum[:]))
	rec := httptest.NewRecorder()
	s.ServeCopy(rec, httptest.NewRequest(http.MethodGet, "/", nil), ref)
	if rec.Code != http.StatusOK || rec.Body.String() != string(body) {
		t.Fatalf("answer %d %q", rec.Code, rec.Body.String())
	}
	if got := rec.Header().Get(peer.SHA256Header); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("%s = %q", peer.SHA256Header, got)
	}
	if got := rec.Header().Get("Content-Length"); got != "8" {
		t.Fatalf("Content-Length = %q", got)
	}
}

func TestServeCopyRefusesANameOutsideTheLayout(t *testing.T) {
	t.Parallel()
	s, dir := newServeTest(t)
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("not an output"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../../../../secret", "/" + secret, ""} {
		ref := store.OutputRef{RunID: 7, Attempt: 1, Name: name}
		rec := httptest.NewRecorder()
		s.ServeCopy(rec, httptest.NewRequest(http.MethodGet, "/", nil), ref)
		if rec.Code != http.StatusNotFound {
			t.Fatalf("name %q: answer %d %q", name, rec.Code, rec.Body.String())
		}
	}
}
