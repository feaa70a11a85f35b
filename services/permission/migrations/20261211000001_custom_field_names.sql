-- Custom fields (crm-fields) join the registry as `custom.<key>`: field rules, masks and the
-- audit view name them that way. A declaration is its owner's whole truth, custom fields
-- included, so a custom field no longer declared (deactivated or deleted) becomes inactive like
-- a built-in one.
ALTER TABLE resource_fields DROP CONSTRAINT resource_fields_name_check;
ALTER TABLE resource_fields ADD CONSTRAINT resource_fields_name_check
    CHECK (name ~ '^(custom\.)?[a-z][a-z0-9_]{0,63}$');
ALTER TABLE role_field_rules DROP CONSTRAINT role_field_rules_field_check;
ALTER TABLE role_field_rules ADD CONSTRAINT role_field_rules_field_check
    CHECK (field ~ '^(custom\.)?[a-z][a-z0-9_]{0,63}$');

-- Who may change the data model (fields, layouts, validation and automation rules): a
-- platform resource, granted like any other.
INSERT INTO resources (name, owner, declared_at) VALUES ('customization', 'permission', now())
    ON CONFLICT (name) DO NOTHING;
