package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storesqlite"
)

// Passwords are hashed with argon2id at OWASP's parameters, as a PHC string with a
// fresh salt each time.
func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Count(h, "$") != 5 {
		t.Fatalf("hash %q", h)
	}
	if h2, _ := HashPassword("correct horse"); h2 == h {
		t.Fatal("the same salt twice")
	}
	if ok, err := CheckPassword(h, "correct horse"); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, _ := CheckPassword(h, "correct horsf"); ok {
		t.Fatal("wrong password accepted")
	}
	if _, err := CheckPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Fatal("a bcrypt hash read as argon2id")
	}
	if ok, err := CheckPassword(dummyHash, "x"); ok || err != nil {
		t.Fatalf("dummy hash: %v %v", ok, err)
	}
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	l := NewLimiter(2, time.Minute)
	t0 := time.Unix(1000, 0)
	l.Fail("k", t0)
	if l.Wait("k", t0) != 0 {
		t.Fatal("limited after one failure")
	}
	l.Fail("k", t0.Add(time.Second))
	if w := l.Wait("k", t0.Add(2*time.Second)); w != 58*time.Second {
		t.Fatalf("wait %s", w)
	}
	if l.Wait("other", t0) != 0 || l.Wait("k", t0.Add(time.Minute)) != 0 {
		t.Fatal("limited beyond the key or the window")
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	cases := []struct {
		have, need Role
		ok         bool
	}{
		{Viewer, Viewer, true}, {Viewer, Operator, false}, {Operator, Viewer, true}, {Admin, Operator, true},
		{Sync, Viewer, false}, {Sync, Sync, true}, {Admin, Sync, true}, {Operator, Sync, false},
		{Admin, Peer, false}, {Peer, Admin, true}, {"", Viewer, false}, {"", Public, true}, {Sync, Any, true}, {"", Any, false},
	}
	for _, c := range cases {
		if got := c.have.Allows(c.need); got != c.ok {
			t.Errorf("%q allows %q: %v", c.have, c.need, got)
		}
	}
}

func openStore(t *testing.T) store.Store {
	st, err := storesqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tandem.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// The first node records the secret's fingerprint; a node with another secret is
// refused; without a configured secret every node reads the one the first generated.
func TestClusterSecret(t *testing.T) {
	t.Parallel()
	ctx, now := context.Background(), time.Now()
	st := openStore(t)
	a, err := ClusterSecret(ctx, st, nil, now)
	if err != nil || len(a) != 32 {
		t.Fatal(a, err)
	}
	if b, err := ClusterSecret(ctx, st, nil, now); err != nil || string(b) != string(a) {
		t.Fatalf("second node: %v", err)
	}
	if _, err := ClusterSecret(ctx, st, []byte("some other secret value"), now); !errors.Is(err, ErrOtherCluster) {
		t.Fatalf("another secret: %v", err)
	}
	st2 := openStore(t)
	conf := []byte("configured cluster secret")
	if _, err := ClusterSecret(ctx, st2, conf, now); err != nil {
		t.Fatal(err)
	}
	if _, err := ClusterSecret(ctx, st2, nil, now); !errors.Is(err, ErrOtherCluster) {
		t.Fatalf("a node without the configured secret: %v", err)
	}
	// A signature covers method, path, time and body.
	k := NewClusterKey(conf, "n1", nil)
	req, _ := http.NewRequest("POST", "http://x/api/v1/switch", strings.NewReader(`{"to":"b"}`))
	k.Sign(req, []byte(`{"to":"b"}`))
	if node, err := k.Verify(req); err != nil || node != "n1" {
		t.Fatalf("verify: %q %v", node, err)
	}
	req2, _ := http.NewRequest("POST", "http://x/api/v1/switch", strings.NewReader(`{"to":"c"}`))
	req2.Header = req.Header
	if _, err := k.Verify(req2); err == nil {
		t.Fatal("another body verified")
	}
	old := NewClusterKey(conf, "n1", func() time.Time { return time.Now().Add(-time.Hour) })
	req3, _ := http.NewRequest("GET", "http://x/a", nil)
	old.Sign(req3, nil)
	if _, err := k.Verify(req3); err == nil {
		t.Fatal("an hour-old signature verified")
	}
}

// The bootstrap token is made once per repository, owner-only.
func TestBootstrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	dir := t.TempDir()
	a := store.Audit{By: "node n1 (first start)", Node: "n1", Now: time.Now()}
	p, err := Bootstrap(ctx, st, dir, a)
	if err != nil || p != filepath.Join(dir, BootstrapFile) {
		t.Fatal(p, err)
	}
	tok, err := ReadBootstrapToken(dir)
	if err != nil || !strings.HasPrefix(tok, TokenPrefix) {
		t.Fatal(tok, err)
	}
	if got, err := st.TokenByHash(ctx, HashSecret(tok)); err != nil || got.Role != "admin" {
		t.Fatal(got, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi.Mode(), err)
	}
	if p, err := Bootstrap(ctx, st, t.TempDir(), a); p != "" || err != nil {
		t.Fatalf("second bootstrap: %q %v", p, err)
	}
}

func TestSealerAndRedaction(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := LoadSecretKey("", dir)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := LoadSecretKey("", dir); err != nil || string(again) != string(key) {
		t.Fatalf("the key changed: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, SecretKeyFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode())
	}
	s, _ := NewSealer(key)
	ct, err := s.Seal("DB", "hunter2")
	if err != nil || strings.Contains(string(ct), "hunter2") {
		t.Fatal(err)
	}
	if v, err := s.Open("DB", ct); err != nil || v != "hunter2" {
		t.Fatal(v, err)
	}
	if _, err := s.Open("OTHER", ct); err == nil {
		t.Fatal("a ciphertext opened under another name")
	}
	seen := map[string]string{}
	out, err := ResolveSecrets(`Bearer {{secret "DB"}} and {{ secret "DB" }}`, func(string) (string, error) { return "hunter2", nil }, seen)
	if err != nil || out != "Bearer hunter2 and hunter2" || seen["DB"] != "hunter2" {
		t.Fatal(out, err)
	}
	if got := RedactSecrets("failed: hunter2", seen); got != "failed: «secret DB»" {
		t.Fatal(got)
	}
	for in, want := range map[string]string{
		`Get "https://bob:pw@h.example/x?token=abc&x=1": refused`: `Get "https://bob:***@h.example/x?token=***&x=***": refused`,
		"postgres://u@db/t": "postgres://u@db/t",
		"see http://h/p":    "see http://h/p",
	} {
		if got := RedactURLs(in); got != want {
			t.Errorf("RedactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

// A resolver puts values in and takes them out of what the use reports: inside a URL a
// value goes with the part that held it, elsewhere it shows as «secret NAME»; errors
// keep what they wrap.
func TestResolverRedacts(t *testing.T) {
	t.Parallel()
	vals := map[string]string{"PASS": `pa ss"word`, "TOK": "tok-123456"}
	r := NewResolver(func(_ context.Context, name string) (string, error) {
		if v, ok := vals[name]; ok {
			return v, nil
		}
		return "", errors.New("secret " + name + ": not found")
	})
	ctx := context.Background()
	u, err := r.Resolve(ctx, `http://alice:{{secret "PASS"}}@host/x?key={{secret "TOK"}}&b=1`)
	if err != nil || u != `http://alice:pa ss"word@host/x?key=tok-123456&b=1` {
		t.Fatalf("Resolve: %q %v", u, err)
	}
	if plain, err := r.Resolve(ctx, "no reference"); err != nil || plain != "no reference" {
		t.Fatalf("Resolve without a reference: %q %v", plain, err)
	}
	if _, err := r.Resolve(ctx, `{{secret "NOPE"}}`); err == nil {
		t.Fatal("a missing secret resolved")
	}
	got := r.Redact("Post " + u + " refused; the reply said tok-123456 and " + vals["PASS"])
	want := "Post http://alice:***@host/x?key=***&b=*** refused; the reply said «secret TOK» and «secret PASS»"
	if got != want {
		t.Fatalf("Redact:\n got %q\nwant %q", got, want)
	}
	base := errors.New("base")
	err = r.RedactError(fmt.Errorf("send to %s: %w", u, base))
	if !errors.Is(err, base) || strings.Contains(err.Error(), "tok-123456") || strings.Contains(err.Error(), "ss\"word") {
		t.Fatalf("RedactError: %v", err)
	}
	var none *Resolver
	if _, err := none.Resolve(ctx, `{{secret "TOK"}}`); !errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("a nil resolver: %v", err)
	}
}
