-- API clients (crm.permission.v1.ApiClientService): external systems using OAuth 2.0 client
-- credentials. Each is backed by a service user with the same id, which holds its roles.
CREATE TABLE api_clients (
    id                  UUID PRIMARY KEY REFERENCES users (id),
    client_id           TEXT NOT NULL UNIQUE,
    name                TEXT NOT NULL,
    -- SHA-256 of the secret: secrets are 256 random bits, so a fast hash is enough.
    secret_hash         BYTEA NOT NULL,
    scopes              TEXT[] NOT NULL,
    requests_per_window INTEGER NOT NULL CHECK (requests_per_window >= 0),
    version             BIGINT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);
