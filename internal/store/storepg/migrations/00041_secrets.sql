-- +goose Up
-- Named secrets, encrypted by the nodes (AES-256-GCM, the name as associated data):
-- the repository keeps only ciphertexts. version grows with each set.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    ciphertext TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE secrets;
