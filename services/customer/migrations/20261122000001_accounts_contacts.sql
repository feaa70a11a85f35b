-- Accounts (companies) and contacts (people at an account). Rows are soft-deleted
-- (deleted_at) so history and audit can still refer to them.

CREATE TABLE accounts (
    id               UUID PRIMARY KEY,
    name             TEXT NOT NULL,
    website          TEXT,
    industry         TEXT,
    phone            TEXT,
    email            TEXT,
    owner_id         UUID NOT NULL,
    tags             TEXT[] NOT NULL DEFAULT '{}',
    lifecycle_status TEXT NOT NULL CHECK (lifecycle_status IN ('prospect', 'active', 'inactive', 'churned')),
    grade            TEXT CHECK (grade IN ('A', 'B', 'C', 'D')),
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    deleted_at       TIMESTAMPTZ
);

-- Keyset pagination for each sort, over live rows only.
CREATE INDEX accounts_created ON accounts (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX accounts_updated ON accounts (updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX accounts_name ON accounts (name, id) WHERE deleted_at IS NULL;
CREATE INDEX accounts_owner ON accounts (owner_id) WHERE deleted_at IS NULL;
CREATE INDEX accounts_tags ON accounts USING GIN (tags) WHERE deleted_at IS NULL;

CREATE TABLE contacts (
    id               UUID PRIMARY KEY,
    account_id       UUID NOT NULL REFERENCES accounts (id),
    first_name       TEXT NOT NULL,
    last_name        TEXT,
    email            TEXT,
    phone            TEXT,
    title            TEXT,
    owner_id         UUID NOT NULL,
    tags             TEXT[] NOT NULL DEFAULT '{}',
    lifecycle_status TEXT NOT NULL CHECK (lifecycle_status IN ('prospect', 'active', 'inactive', 'churned')),
    grade            TEXT CHECK (grade IN ('A', 'B', 'C', 'D')),
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    deleted_at       TIMESTAMPTZ
);

CREATE INDEX contacts_created ON contacts (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_updated ON contacts (updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_name ON contacts (first_name, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_owner ON contacts (owner_id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_account ON contacts (account_id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_tags ON contacts USING GIN (tags) WHERE deleted_at IS NULL;
