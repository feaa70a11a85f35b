-- Authentication: local users, sign-in throttling, access-token signing keys, refresh tokens.

CREATE TABLE users (
    id                  UUID PRIMARY KEY,                     -- UUID v7
    username            TEXT NOT NULL
                        CHECK (username = lower(username) AND char_length(username) BETWEEN 3 AND 64),
    display_name        TEXT NOT NULL,
    email               TEXT,
    status              TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    password_hash       TEXT,                                 -- argon2id PHC string; NULL: SSO only
    password_changed_at TIMESTAMPTZ,
    version             BIGINT NOT NULL DEFAULT 1,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

-- Usernames are unique regardless of case (they are stored lower-cased; the index keeps it so
-- even for rows written by other means).
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

-- Failed sign-ins per normalised username string, whether or not such a user exists, so that
-- throttling behaves identically for unknown usernames (no enumeration). No foreign key on
-- purpose.
CREATE TABLE login_throttle (
    username_key    TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL DEFAULT 0,  -- since the last success or lock, in-flight included
    lock_count      INTEGER NOT NULL DEFAULT 0,  -- locks so far: the next lasts base * 2^lock_count
    locked_until    TIMESTAMPTZ,
    last_failure_at TIMESTAMPTZ
);

CREATE INDEX login_throttle_last_failure ON login_throttle (last_failure_at);

-- Access-token signing keys. The private half is AES-256-GCM encrypted under the
-- key-encryption key (associated data: the kid) and deleted when the key retires.
CREATE TABLE signing_keys (
    kid                    TEXT PRIMARY KEY,
    algorithm              TEXT NOT NULL CHECK (algorithm = 'EdDSA'),
    public_key             BYTEA NOT NULL,            -- raw 32-byte Ed25519 public key
    private_key_nonce      BYTEA,                     -- 12 bytes
    private_key_ciphertext BYTEA,                     -- encrypted PKCS#8 document + GCM tag
    created_at             TIMESTAMPTZ NOT NULL,
    not_after_signing      TIMESTAMPTZ NOT NULL,      -- created_at + rotation
    retired_at             TIMESTAMPTZ,               -- out of the JWKS, private half deleted
    CHECK (retired_at IS NOT NULL
           OR (private_key_nonce IS NOT NULL AND private_key_ciphertext IS NOT NULL))
);

CREATE INDEX signing_keys_live ON signing_keys (created_at DESC) WHERE retired_at IS NULL;

-- Refresh tokens: single use, rotated within a family (one family per sign-in). Only the
-- SHA-256 of a token is stored, never the token.
CREATE TABLE refresh_tokens (
    id             UUID PRIMARY KEY,
    family_id      UUID NOT NULL,                     -- the session; the `sid` claim
    user_id        UUID NOT NULL REFERENCES users (id),
    token_hash     BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    issued_at      TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ,                       -- traded for the next token
    revoked_at     TIMESTAMPTZ,
    revoked_reason TEXT CHECK (revoked_reason IN ('logout', 'reuse', 'disabled', 'password_changed')),
    client_ip      TEXT,
    user_agent     TEXT
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
