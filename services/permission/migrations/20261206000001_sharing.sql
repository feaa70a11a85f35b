-- Sharing beyond the roles' data scopes (crm.permission.v1.SharingService).

-- One record shared with one user.
CREATE TABLE record_shares (
    resource   TEXT NOT NULL
               CHECK (resource IN ('account', 'contact', 'lead', 'opportunity', 'contract', 'ticket')),
    record_id  UUID NOT NULL,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access     TEXT NOT NULL CHECK (access IN ('read', 'edit')),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (resource, record_id, user_id)
);
CREATE INDEX record_shares_user ON record_shares (user_id, resource);

-- A department's members or a role's holders get the records of another department, or the
-- records matching a condition.
CREATE TABLE sharing_rules (
    id                    UUID PRIMARY KEY,
    name                  TEXT NOT NULL,
    resource              TEXT NOT NULL
                          CHECK (resource IN ('account', 'contact', 'lead', 'opportunity', 'contract', 'ticket')),
    access                TEXT NOT NULL CHECK (access IN ('read', 'edit')),
    grantee_department_id UUID REFERENCES departments (id) ON DELETE CASCADE,
    grantee_role_id       UUID REFERENCES roles (id) ON DELETE CASCADE,
    source_department_id  UUID REFERENCES departments (id) ON DELETE CASCADE,
    condition_field       TEXT,
    condition_equals      TEXT,
    created_at            TIMESTAMPTZ NOT NULL,
    UNIQUE (resource, name),
    CHECK ((grantee_department_id IS NULL) <> (grantee_role_id IS NULL)),
    CHECK ((source_department_id IS NULL) <> (condition_field IS NULL)),
    CHECK ((condition_field IS NULL) = (condition_equals IS NULL))
);
