package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandemhq/tandem/internal/store"
)

// BootstrapTokenName names the admin token the first node makes.
const BootstrapTokenName = "bootstrap-admin"

// Bootstrap makes, on the first start on a repository, an admin token and writes it
// owner-only into dataDir/admin.token; it returns the file's path, or "" when the
// repository was bootstrapped before (by this node or another). Of several nodes
// starting together on an empty repository, one makes it.
func Bootstrap(ctx context.Context, st store.Auth, dataDir string, a store.Audit) (string, error) {
	ticket := rand.Text()
	got, err := st.SettingInit(ctx, settingBootstrap, a.Node+" "+ticket, a.Now)
	if err != nil {
		return "", err
	}
	if got != a.Node+" "+ticket {
		return "", nil
	}
	secret, err := NewSecret()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("bootstrap admin token: %w", err)
	}
	path := filepath.Join(dataDir, BootstrapFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("bootstrap admin token: %w", err)
	}
	if _, err := st.TokenCreate(ctx, store.TokenCreateParams{Name: BootstrapTokenName, Kind: store.TokenAPI, Role: string(Admin),
		Hash: HashSecret(secret), Audit: a}); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("bootstrap admin token: %w", err)
	}
	return path, nil
}
