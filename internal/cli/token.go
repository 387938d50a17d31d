package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/config"
)

// The token a client command sends, first found of:
//  1. --token, else TANDEM_TOKEN;
//  2. the session `tandem login` saved for the first server in use;
//  3. the bootstrap admin token in the data directory of a server on this host:
//     $TANDEM_DATA_DIR/admin.token, else ./tandem-data/admin.token (readable only by
//     the server's user).
//
// None found: the request goes without one and the server says what it needs.
func (g *globals) resolveToken() string {
	if g.token != "" {
		return g.token
	}
	if t := os.Getenv("TANDEM_TOKEN"); t != "" {
		return t
	}
	if len(g.servers) > 0 {
		if s, err := loadSessions(); err == nil {
			if t, ok := s[normalServer(g.servers[0])]; ok {
				return t.Token
			}
		}
	}
	dir := cmpOr(os.Getenv("TANDEM_DATA_DIR"), config.DataDirDefault)
	if t, err := auth.ReadBootstrapToken(dir); err == nil {
		return t
	}
	return ""
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// session is a login saved for one server.
type session struct {
	Token string `json:"token"`
	User  string `json:"user"`
}

// sessionsPath is where logins are saved: the user's config dir, tandem/sessions.json.
func sessionsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory: %w", err)
	}
	return filepath.Join(dir, "tandem", "sessions.json"), nil
}

func loadSessions() (map[string]session, error) {
	p, err := sessionsPath()
	if err != nil {
		return nil, err
	}
	m := map[string]session{}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return m, nil
}

// saveSessions writes the logins owner-only.
func saveSessions(m map[string]session) (string, error) {
	p, err := sessionsPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}

// normalServer is a server URL as sessions are keyed.
func normalServer(s string) string {
	s = strings.TrimSpace(strings.Split(s, ",")[0])
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	return strings.TrimRight(s, "/")
}
