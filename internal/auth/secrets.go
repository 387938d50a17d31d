package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hpke"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// SecretKeyFile is the name, in the data directory, of the key a single node generates
// for secrets when none is configured (secret_key_file).
const SecretKeyFile = "secret.key"

// ErrNoSecretKey: this node cannot encrypt or decrypt the cluster's secrets.
var ErrNoSecretKey = errors.New("this node has not the cluster's secret key (secret_key_file)")

// Sealer encrypts secrets with AES-256-GCM, each bound to its name (associated data).
// It also has the transfer key pair derived from the same key (transfer.go).
type Sealer struct {
	aead     cipher.AEAD
	transfer hpke.PrivateKey
}

// NewSealer returns a sealer over a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key: want 32 bytes, got %d", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	tr, err := transferPair(key)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: g, transfer: tr}, nil
}

// Seal encrypts value: a random nonce, then the ciphertext.
func (s *Sealer) Seal(name, value string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, []byte(value), []byte(name)), nil
}

// Open decrypts what Seal made of name's value.
func (s *Sealer) Open(name string, ct []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(ct) < n {
		return "", fmt.Errorf("secret %s: ciphertext too short", name)
	}
	b, err := s.aead.Open(nil, ct[:n], ct[n:], []byte(name))
	if err != nil {
		return "", fmt.Errorf("secret %s: cannot decrypt it with this node's key: %w", name, ErrNoSecretKey)
	}
	return string(b), nil
}

// LoadSecretKey reads the key file (hex, 64 digits), or, with path "", the data
// directory's, generating it owner-only on first start.
func LoadSecretKey(path, dataDir string) ([]byte, error) {
	gen := path == ""
	if gen {
		path = filepath.Join(dataDir, SecretKeyFile)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && gen {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("secret key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("secret key: %w", err)
		}
		_, err = fmt.Fprintln(f, hex.EncodeToString(key))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("secret key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("secret key %s: want 64 hex digits (32 bytes)", path)
	}
	return key, nil
}

const settingSecretKey = "auth.secret_key_fingerprint"

// CheckSecretKey records key's fingerprint in the repository (the first node's wins)
// and reports whether key is the one recorded.
func CheckSecretKey(ctx context.Context, st store.Auth, key []byte, now time.Time) (bool, error) {
	fp := Fingerprint(key)
	got, err := st.SettingInit(ctx, settingSecretKey, fp, now)
	if err != nil {
		return false, err
	}
	return got == fp, nil
}

// secretRef is a reference to a secret in a job field: {{secret "NAME"}}.
var secretRef = job.SecretRef

// SecretNamePattern is what a secret's name may be.
var SecretNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// HasSecretRef reports whether v refers to a secret.
func HasSecretRef(v string) bool { return secretRef.MatchString(v) }

// SecretRefs returns the names v refers to.
func SecretRefs(v string) []string {
	var out []string
	for _, m := range secretRef.FindAllStringSubmatch(v, -1) {
		out = append(out, m[1])
	}
	return out
}

// ResolveSecrets replaces each {{secret "NAME"}} in v by lookup(NAME), and records
// each value it put in into seen (name → value), for redaction.
func ResolveSecrets(v string, lookup func(string) (string, error), seen map[string]string) (string, error) {
	var ferr error
	out := secretRef.ReplaceAllStringFunc(v, func(m string) string {
		name := secretRef.FindStringSubmatch(m)[1]
		val, err := lookup(name)
		if err != nil {
			ferr = errors.Join(ferr, err)
			return m
		}
		seen[name] = val
		return val
	})
	return out, ferr
}

// RedactSecrets replaces each value in seen that occurs in s by «secret NAME».
func RedactSecrets(s string, seen map[string]string) string {
	for name, v := range seen {
		if len(v) >= 4 { // shorter values would blot out ordinary text
			s = strings.ReplaceAll(s, v, "«secret "+name+"»")
		}
	}
	return s
}

// Redact hides, in s, the values in seen («secret NAME») and the passwords and query
// values of URLs. A value inside a URL is hidden as the URL's part is (***).
func Redact(s string, seen map[string]string) string {
	// The values first, as placeholders a URL may hold (no space, no quote), so that a
	// value that breaks URL syntax is still hidden whole, and one inside a URL goes
	// with the part that held it.
	names := map[string]string{}
	for name, v := range seen {
		if len(v) >= 4 {
			ph := "\ue000" + name + "\ue001"
			names[ph] = name
			s = strings.ReplaceAll(s, v, ph)
		}
	}
	s = RedactURLs(s)
	for ph, name := range names {
		s = strings.ReplaceAll(s, ph, "«secret "+name+"»")
	}
	return s
}

// urlInText finds URLs in log lines and reasons.
var urlInText = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// RedactURLs hides, in every URL in s, the userinfo's password and the query's values.
func RedactURLs(s string) string {
	return urlInText.ReplaceAllStringFunc(s, RedactURL)
}

// RedactURL hides the password of u's userinfo and the values of its query.
func RedactURL(u string) string { return job.RedactURL(u) }
