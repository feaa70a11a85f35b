-- Authorisation: the organisation (departments, memberships, managers), roles with their grants
-- and field rules, role assignments, and the global permission version.
--
-- Trees (departments, the role hierarchy, managers) are adjacency lists walked with recursive
-- CTEs, not materialised paths: they are small (at most a few thousand rows), written rarely and
-- read through `load_snapshot`, which walks only the part below one user. A single `parent_id`
-- cannot disagree with itself; a path column would be a second copy to rewrite for a whole
-- subtree on every move. Cycles are refused by the service, under the permission-version lock.

-- One row: the version of everything decisions depend on. Every change of the organisation (and
-- of a user's status) increases it in the same transaction, after locking this row first. So
--   * decisions computed at version N stay right until the version moves (callers cache by it);
--   * a reader never sees version N without every change up to N (same snapshot, same row);
--   * organisation writes run one at a time, which makes the cycle and "still has members"
--     checks race-free without further locks.
-- A sequence would give neither: nextval is visible before the change commits and is not rolled
-- back with it.
CREATE TABLE permission_version (
    singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    version   BIGINT NOT NULL CHECK (version >= 1)
);
INSERT INTO permission_version (singleton, version) VALUES (true, 1);

CREATE TABLE departments (
    id         UUID PRIMARY KEY,                      -- UUID v7
    name       TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    parent_id  UUID REFERENCES departments (id) CHECK (parent_id <> id),  -- NULL: a root
    version    BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Sibling names are unique regardless of case (roots are siblings of each other), so a
-- department is found by its path of names — which is how the demo seed stays idempotent.
CREATE UNIQUE INDEX departments_sibling_name_key
    ON departments (parent_id, lower(name)) NULLS NOT DISTINCT;

-- A user's departments: exactly one primary whenever there are any (the partial index keeps it
-- to at most one; the service writes memberships only as a whole set with its primary).
CREATE TABLE user_departments (
    user_id       UUID NOT NULL REFERENCES users (id),
    department_id UUID NOT NULL REFERENCES departments (id),
    is_primary    BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, department_id)
);

CREATE UNIQUE INDEX user_departments_one_primary ON user_departments (user_id) WHERE is_primary;
CREATE INDEX user_departments_department ON user_departments (department_id);

-- The manager tree, and the version of a user's place in the organisation (departments, manager,
-- roles). Separate from `version`, which sign-in compares: organisation changes must not make a
-- concurrent sign-in fail.
ALTER TABLE users
    ADD COLUMN manager_id  UUID REFERENCES users (id) CHECK (manager_id <> id),
    ADD COLUMN org_version BIGINT NOT NULL DEFAULT 1;

CREATE INDEX users_manager ON users (manager_id) WHERE manager_id IS NOT NULL;

CREATE TABLE roles (
    id             UUID PRIMARY KEY,
    name           TEXT NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{1,63}$'),
    description    TEXT,
    parent_role_id UUID REFERENCES roles (id) CHECK (parent_role_id <> id),  -- inherits its grants
    version        BIGINT NOT NULL DEFAULT 1,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE UNIQUE INDEX roles_name_key ON roles (name);
CREATE INDEX roles_parent ON roles (parent_role_id) WHERE parent_role_id IS NOT NULL;

-- The value lists mirror the proto enums; widening one is a migration replacing the CHECK.
CREATE TABLE role_grants (
    role_id  UUID NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    resource TEXT NOT NULL
             CHECK (resource IN ('account', 'contact', 'lead', 'opportunity', 'contract', 'ticket')),
    action   TEXT NOT NULL
             CHECK (action IN ('read', 'create', 'update', 'delete', 'export', 'assign', 'approve')),
    scope    TEXT NOT NULL
             CHECK (scope IN ('own', 'own_and_subordinates', 'department', 'department_and_children', 'all')),
    PRIMARY KEY (role_id, resource, action)
);

CREATE TABLE role_field_rules (
    role_id    UUID NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    resource   TEXT NOT NULL
               CHECK (resource IN ('account', 'contact', 'lead', 'opportunity', 'contract', 'ticket')),
    field      TEXT NOT NULL CHECK (field ~ '^[a-z][a-z0-9_]{0,63}$'),
    visibility TEXT NOT NULL CHECK (visibility IN ('hidden', 'read_only', 'editable')),
    mask       TEXT CHECK (mask IN ('phone', 'email', 'id_number')),
    PRIMARY KEY (role_id, resource, field),
    -- A masked field is shown but cannot be changed.
    CHECK (mask IS NULL OR visibility = 'read_only')
);

CREATE TABLE user_roles (
    user_id     UUID NOT NULL REFERENCES users (id),
    role_id     UUID NOT NULL REFERENCES roles (id),
    assigned_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, role_id)
);

CREATE INDEX user_roles_role ON user_roles (role_id);
