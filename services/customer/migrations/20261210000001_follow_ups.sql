-- Follow-ups (跟进记录): what someone did with a customer, on an account and optionally one of
-- its contacts. Soft-deleted like accounts and contacts. `next_follow_up_at` is what reminders
-- will go by, hence its own index.

CREATE TABLE follow_ups (
    id                UUID PRIMARY KEY,
    account_id        UUID NOT NULL REFERENCES accounts (id),
    contact_id        UUID REFERENCES contacts (id),
    kind              TEXT NOT NULL CHECK (kind IN ('call', 'meeting', 'visit', 'note', 'email')),
    subject           TEXT NOT NULL,
    content           TEXT,
    outcome           TEXT,
    occurred_at       TIMESTAMPTZ NOT NULL,
    next_follow_up_at TIMESTAMPTZ,
    owner_id          UUID NOT NULL,
    department_id     UUID,
    version           BIGINT NOT NULL DEFAULT 1,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    deleted_at        TIMESTAMPTZ
);

-- Keyset pagination for each sort, over live rows only.
CREATE INDEX follow_ups_created ON follow_ups (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX follow_ups_updated ON follow_ups (updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX follow_ups_subject ON follow_ups (subject, id) WHERE deleted_at IS NULL;
CREATE INDEX follow_ups_owner ON follow_ups (owner_id) WHERE deleted_at IS NULL;
CREATE INDEX follow_ups_department ON follow_ups (department_id) WHERE deleted_at IS NULL;
CREATE INDEX follow_ups_account ON follow_ups (account_id, occurred_at) WHERE deleted_at IS NULL;
CREATE INDEX follow_ups_next ON follow_ups (next_follow_up_at)
    WHERE deleted_at IS NULL AND next_follow_up_at IS NOT NULL;
