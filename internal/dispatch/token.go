package dispatch

import (
	"crypto/rand"
	"encoding/hex"
)

// newToken returns a fresh attempt token.
func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
