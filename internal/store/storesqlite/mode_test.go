package storesqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

// The repository file and its journal are the owner's only.
func TestRepositoryFileIsOwnerOnly(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "db", "tandem.db")
	st, err := storesqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.NodeList(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + ".lock"} {
		fi, err := os.Stat(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want owner only", p, fi.Mode().Perm())
		}
	}
}
