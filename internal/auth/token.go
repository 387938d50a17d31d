package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TokenPrefix starts every token secret, so a leaked one is recognisable.
const TokenPrefix = "tdm_"

// NewSecret returns a fresh token secret: tdm_ and 32 random bytes, base64url.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashSecret is what the repository keeps of a secret: its SHA-256, hex.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// BootstrapFile is the name, in the data directory, of the admin token the first node
// of a repository makes.
const BootstrapFile = "admin.token"

// ReadBootstrapToken reads the bootstrap admin token kept in dataDir.
func ReadBootstrapToken(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, BootstrapFile))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
