package store

import (
	"context"
	"time"
)

// Secrets is the repository's concern of named secrets, kept encrypted (the repository
// never sees a value): each set makes a new version; every change writes its event,
// naming who made it, never the value.
type Secrets interface {
	// SecretSet stores a new version of the secret; it returns the version.
	SecretSet(ctx context.Context, p SecretSetParams) (int, error)
	// SecretGet returns the current version, ciphertext included; ErrNotFound when none.
	SecretGet(ctx context.Context, name string) (Secret, error)
	// SecretList lists the secrets by name, without their ciphertexts.
	SecretList(ctx context.Context) ([]Secret, error)
	// SecretDelete removes a secret; ErrNotFound when none.
	SecretDelete(ctx context.Context, p SecretDeleteParams) error
}

// Secret is a named secret's current version.
type Secret struct {
	Name       string
	Version    int
	Ciphertext []byte
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// SecretSetParams are the arguments of SecretSet.
type SecretSetParams struct {
	Name       string
	Ciphertext []byte
	Audit      Audit
}

// SecretDeleteParams are the arguments of SecretDelete.
type SecretDeleteParams struct {
	Name  string
	Audit Audit
}
