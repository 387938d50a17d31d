package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Users and tokens: added, found, listed, deleted with their sessions, each change an
// event naming who made it.
func testAuth(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := store.Audit{By: "token bootstrap", Client: "127.0.0.1:1", Node: "n1", Now: t0}
	if _, err := s.UserAdd(ctx, store.UserAddParams{Name: "alice", Role: "operator", Hash: "$argon2id$x", Audit: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserAdd(ctx, store.UserAddParams{Name: "alice", Role: "admin", Hash: "h", Audit: a}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second alice: %v", err)
	}
	u, err := s.UserGet(ctx, "alice")
	if err != nil || u.Role != "operator" || u.Hash != "$argon2id$x" || !u.CreatedAt.Equal(t0) {
		t.Fatalf("get: %+v %v", u, err)
	}
	exp := t0.Add(time.Hour)
	sess, err := s.TokenCreate(ctx, store.TokenCreateParams{Name: "session-1", Kind: store.TokenSession, Role: "operator", User: "alice", Hash: "aa", ExpiresAt: &exp, Audit: a})
	if err != nil || sess.ID == 0 {
		t.Fatalf("session: %+v %v", sess, err)
	}
	api, err := s.TokenCreate(ctx, store.TokenCreateParams{Name: "ci", Kind: store.TokenAPI, Role: "viewer", Hash: "bb", Audit: a})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenCreate(ctx, store.TokenCreateParams{Name: "ci", Kind: store.TokenAPI, Role: "viewer", Hash: "cc", Audit: a}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second ci: %v", err)
	}
	got, err := s.TokenByHash(ctx, "aa")
	if err != nil || got.ID != sess.ID || got.User != "alice" || got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || got.CreatedBy != a.By {
		t.Fatalf("by hash: %+v %v", got, err)
	}
	if err := s.TokenTouch(ctx, api.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	list, err := s.TokenList(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "ci" || list[0].LastUsedAt == nil || !list[0].LastUsedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("list: %+v %v", list, err)
	}
	// A logout ends one session, not the user's others.
	if _, err := s.TokenCreate(ctx, store.TokenCreateParams{Name: "session-2", Kind: store.TokenSession, Role: "operator", User: "alice", Hash: "dd", ExpiresAt: &exp, Audit: a}); err != nil {
		t.Fatal(err)
	}
	if err := s.SessionEnd(ctx, store.SessionEndParams{Hash: "dd", Audit: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenByHash(ctx, "dd"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session after its logout: %v", err)
	}
	if _, err := s.TokenByHash(ctx, "aa"); err != nil {
		t.Fatalf("the other session after a logout: %v", err)
	}
	if err := s.SessionEnd(ctx, store.SessionEndParams{Hash: "dd", Audit: a}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("logout twice: %v", err)
	}
	if err := s.SessionEnd(ctx, store.SessionEndParams{Hash: "bb", Audit: a}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an API token ended as a session: %v", err)
	}
	if err := s.UserSetPassword(ctx, store.UserSetPasswordParams{Name: "alice", Hash: "h2", Audit: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenByHash(ctx, "aa"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session after a new password: %v", err)
	}
	// A logout ends that session only, and only a session of that user.
	sess2, err := s.TokenCreate(ctx, store.TokenCreateParams{Name: "session-2", Kind: store.TokenSession, Role: "operator", User: "alice", Hash: "dd", ExpiresAt: &exp, Audit: a})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SessionEnd(ctx, store.SessionEndParams{ID: api.ID, User: "alice", Audit: a}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an API token ended as a session: %v", err)
	}
	if err := s.SessionEnd(ctx, store.SessionEndParams{ID: sess2.ID, User: "bob", Audit: a}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("alice's session ended as bob's: %v", err)
	}
	if err := s.SessionEnd(ctx, store.SessionEndParams{ID: sess2.ID, User: "alice", Audit: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenByHash(ctx, "dd"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session after logout: %v", err)
	}
	if err := s.SessionEnd(ctx, store.SessionEndParams{ID: sess2.ID, User: "alice", Audit: a}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("logout twice: %v", err)
	}
	if err := s.TokenRevoke(ctx, store.TokenRevokeParams{Name: "ci", Audit: a}); err != nil {
		t.Fatal(err)
	}
	if err := s.TokenRevoke(ctx, store.TokenRevokeParams{Name: "ci", Audit: a}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
	if err := s.UserDelete(ctx, store.UserDeleteParams{Name: "alice", Audit: a}); err != nil {
		t.Fatal(err)
	}
	if users, err := s.UserList(ctx); err != nil || len(users) != 0 {
		t.Fatalf("users: %+v %v", users, err)
	}
	evs, err := s.EventList(ctx, store.EventListParams{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"user.deleted", "token.revoked", "user.logout", "user.login", "user.password_changed", "user.logout", "user.login", "token.created", "user.login", "user.added"}
	if len(evs) != len(want) {
		t.Fatalf("events: %+v", evs)
	}
	for i, e := range evs {
		if e.Type != want[i] || e.Data["by"] != a.By || e.Data["client"] != a.Client {
			t.Fatalf("event %d: %+v, want %s by %s", i, e, want[i], a.By)
		}
	}
	v, err := s.SettingInit(ctx, "k", "first", t0)
	if err != nil || v != "first" {
		t.Fatalf("init: %q %v", v, err)
	}
	if v, err = s.SettingInit(ctx, "k", "second", t0); err != nil || v != "first" {
		t.Fatalf("init again: %q %v", v, err)
	}
}

// Secrets: versions grow with each set; the list has no ciphertexts; the events name
// who, never the value.
func testSecrets(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := store.Audit{By: "user alice", Client: "10.0.0.1:5", Node: "n1", Now: t0}
	if v, err := s.SecretSet(ctx, store.SecretSetParams{Name: "DB_PASS", Ciphertext: []byte{1, 2, 3}, Audit: a}); err != nil || v != 1 {
		t.Fatalf("set: %d %v", v, err)
	}
	if v, err := s.SecretSet(ctx, store.SecretSetParams{Name: "DB_PASS", Ciphertext: []byte{4, 5}, Audit: a}); err != nil || v != 2 {
		t.Fatalf("set again: %d %v", v, err)
	}
	sec, err := s.SecretGet(ctx, "DB_PASS")
	if err != nil || sec.Version != 2 || string(sec.Ciphertext) != "\x04\x05" {
		t.Fatalf("get: %+v %v", sec, err)
	}
	list, err := s.SecretList(ctx)
	if err != nil || len(list) != 1 || list[0].Ciphertext != nil || list[0].Version != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := s.SecretDelete(ctx, store.SecretDeleteParams{Name: "DB_PASS", Audit: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SecretGet(ctx, "DB_PASS"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	evs, err := s.EventList(ctx, store.EventListParams{Limit: 10})
	if err != nil || len(evs) != 3 || evs[0].Type != "secret.deleted" || evs[1].Type != "secret.set" || evs[0].Data["by"] != "user alice" {
		t.Fatalf("events: %+v %v", evs, err)
	}
}
