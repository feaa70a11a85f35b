-- Custom field values (crm-fields): one JSONB object per record, keyed by the field's key, in
-- the normalised form crm_fields::values documents. A column with a constant default rewrites
-- nothing (Postgres 11+); the CHECK is added NOT VALID and validated separately, which scans the
-- table without blocking writes.
ALTER TABLE accounts ADD COLUMN custom JSONB NOT NULL DEFAULT '{}';
ALTER TABLE accounts ADD CONSTRAINT accounts_custom_object
    CHECK (jsonb_typeof(custom) = 'object') NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_custom_object;
ALTER TABLE contacts ADD COLUMN custom JSONB NOT NULL DEFAULT '{}';
ALTER TABLE contacts ADD CONSTRAINT contacts_custom_object
    CHECK (jsonb_typeof(custom) = 'object') NOT VALID;
ALTER TABLE contacts VALIDATE CONSTRAINT contacts_custom_object;
