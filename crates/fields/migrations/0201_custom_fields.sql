-- Custom fields (crm-fields): definitions made at run time by administrators, per entity of the
-- owning service. Values live in each record table's `custom` JSONB column; defining a field
-- never changes a table.
CREATE TABLE custom_fields (
    id          UUID PRIMARY KEY,
    -- The resource the field belongs to (`account`).
    entity      TEXT NOT NULL CHECK (entity ~ '^[a-z][a-z0-9_]{1,63}$'),
    key         TEXT NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{0,39}$'),
    -- The whole definition (type, labels, rules, options, …) as crm_fields::Definition.
    definition  JSONB NOT NULL,
    active      BOOLEAN NOT NULL,
    version     BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    -- A deleted field keeps its key: records, caches and events written before may still hold
    -- values under it, and a new field of another type must never read them as its own.
    deleted_at  TIMESTAMPTZ,
    UNIQUE (entity, key)
);
