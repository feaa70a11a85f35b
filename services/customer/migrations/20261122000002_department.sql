-- The department a record belongs to: department data scopes (crm.permission.v1) go by it.
-- Nullable: records made before departments existed, or owned by nobody's department.
ALTER TABLE accounts ADD COLUMN department_id UUID;
ALTER TABLE contacts ADD COLUMN department_id UUID;
CREATE INDEX accounts_department ON accounts (department_id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_department ON contacts (department_id) WHERE deleted_at IS NULL;
