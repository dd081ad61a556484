-- Login through the region's identity provider (config [oidc],
-- docs/OPERATIONS.md). A person's HSA-id, when the ID token names people by
-- it; at most one user per HSA-id.
ALTER TABLE users ADD COLUMN hsa_id TEXT;
CREATE UNIQUE INDEX users_hsa_id ON users (hsa_id);
-- A login begun at the identity provider and not yet returned: known by the
-- SHA-256 of its state, taken (deleted) once, at most ten minutes old.
CREATE TABLE oidc_logins (
    state_hash TEXT PRIMARY KEY NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
