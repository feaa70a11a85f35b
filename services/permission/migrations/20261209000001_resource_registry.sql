-- Resources and their fields as data (the registry), instead of a list repeated in CHECK
-- constraints: a resource is a row here, declared by the service that owns it (built-in
-- fields at its start; custom fields at run time), and every table naming a resource refers
-- to it. A new resource or service is an insert, never a constraint rewrite.

CREATE TABLE resources (
    name        TEXT PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{1,63}$'),
    -- The service that declared it (`customer`, `sales`, …; `permission` for its own).
    owner       TEXT NOT NULL CHECK (owner ~ '^[a-z][a-z0-9_-]{0,63}$'),
    -- When its owner last declared it; NULL for the resources that predate the registry until
    -- their owner declares them.
    declared_at TIMESTAMPTZ
);

CREATE TABLE resource_fields (
    resource  TEXT NOT NULL REFERENCES resources (name),
    name      TEXT NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
    -- What the field holds (`text`, `email`, `phone`, `choice`, …): what a rule may do with it.
    kind      TEXT NOT NULL CHECK (kind ~ '^[a-z][a-z_]{0,31}$'),
    -- Whether field rules may hide or mask it (ids, versions, owner and department not).
    governed  BOOLEAN NOT NULL,
    -- Whether a sharing rule's condition may test it.
    condition BOOLEAN NOT NULL,
    -- Built in (declared with the resource) or custom (defined at run time).
    built_in  BOOLEAN NOT NULL,
    -- A field its owner no longer declares stays (rules naming it keep working) but is
    -- inactive: new rules may not name it.
    active    BOOLEAN NOT NULL DEFAULT true,
    PRIMARY KEY (resource, name)
);

-- What exists today, so stored grants, rules and shares stay valid; their owners fill in the
-- fields when they next start.
INSERT INTO resources (name, owner) VALUES
    ('account', 'customer'), ('contact', 'customer'), ('lead', 'sales'),
    ('opportunity', 'sales'), ('contract', 'sales'), ('ticket', 'ticket'),
    ('audit', 'permission'), ('organisation', 'permission');
UPDATE resources SET declared_at = now() WHERE owner = 'permission';

ALTER TABLE role_grants DROP CONSTRAINT role_grants_resource_check;
ALTER TABLE role_grants ADD CONSTRAINT role_grants_resource_fkey
    FOREIGN KEY (resource) REFERENCES resources (name);
ALTER TABLE role_field_rules DROP CONSTRAINT role_field_rules_resource_check;
ALTER TABLE role_field_rules ADD CONSTRAINT role_field_rules_resource_fkey
    FOREIGN KEY (resource) REFERENCES resources (name);
ALTER TABLE record_shares DROP CONSTRAINT record_shares_resource_check;
ALTER TABLE record_shares ADD CONSTRAINT record_shares_resource_fkey
    FOREIGN KEY (resource) REFERENCES resources (name);
ALTER TABLE sharing_rules DROP CONSTRAINT sharing_rules_resource_check;
ALTER TABLE sharing_rules ADD CONSTRAINT sharing_rules_resource_fkey
    FOREIGN KEY (resource) REFERENCES resources (name);
